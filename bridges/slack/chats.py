"""Slack conversations as portals: name, topic, DM partner, the workspace as the space.

Members are not listed here in full: a 5,000-member channel must not turn into 5,000 ghost
joins (matrix-appservice-slack #711). The chat info lists the members of small channels
(``member_list_limit``) and otherwise none; ghosts join as they speak.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import ChatInfo, ChatMember, PortalKey, SpaceInfo

from . import config as cfg
from .ids import parse_chat_rid, user_rid

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.chats")

#: Channel sizes remembered (bounded, for 1,000s of channels).
MAX_SIZES = 20_000


def chat_name(conv: dict[str, Any]) -> str | None:
    if conv.get("is_im"):
        return None
    name = conv.get("name_normalized") or conv.get("name")
    return f"#{name}" if isinstance(name, str) and name and not conv.get("is_mpim") else name


def chat_topic(conv: dict[str, Any]) -> str | None:
    for key in ("topic", "purpose"):
        value = (conv.get(key) or {}).get("value")
        if isinstance(value, str) and value:
            return value
    return None


def team_icon(team: dict[str, Any]) -> str | None:
    """The workspace's own icon (None for Slack's default one, which says nothing)."""
    icon = team.get("icon")
    if not isinstance(icon, dict) or icon.get("image_default"):
        return None
    for key in ("image_230", "image_132", "image_102", "image_88", "image_68"):
        value = icon.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return None


class Chats:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        #: team.info per workspace, asked once (again after a ``team_rename``).
        self._teams: dict[str, dict[str, Any]] = {}
        #: Members per channel as last known (conversations.info, then joins and leaves):
        #: whether a channel is small enough for its members to be bridged (members.py).
        self.sizes: OrderedDict[tuple[str, str], int] = OrderedDict()

    async def team(self, client: SlackClient) -> dict[str, Any]:
        team = self._teams.get(client.team_id)
        if team is None:
            try:
                data = await client.call("team.info")
            except Exception as e:  # noqa: BLE001 - the space keeps the login's team name
                log.info("team.info of %s: %s", client.team_id, e)
                return {}
            found = data.get("team")
            team = found if isinstance(found, dict) else {}
            self._teams[client.team_id] = team
        return team

    def forget_team(self, team: str) -> None:
        self._teams.pop(team, None)

    async def space(self, client: SlackClient) -> SpaceInfo:
        """The workspace as a space: its name and icon (team.info), else the login's."""
        meta = client.meta
        team = await self.team(client)
        name = team.get("name") if isinstance(team.get("name"), str) else None
        return SpaceInfo(
            id=meta.team_id.lower(),
            name=name or meta.team_name or meta.team_id,
            avatar_url=team_icon(team),
        )

    def note_size(self, team: str, channel: str, count: int) -> None:
        self.sizes[(team, channel)] = max(count, 0)
        self.sizes.move_to_end((team, channel))
        while len(self.sizes) > MAX_SIZES:
            self.sizes.popitem(last=False)

    async def size(self, client: SlackClient, channel: str) -> int | None:
        """How many members ``channel`` has (conversations.info once, then kept up to date)."""
        known = self.sizes.get((client.team_id, channel))
        if known is not None:
            return known
        try:
            conv = await self.conversation(client, channel)
        except Exception as e:  # noqa: BLE001 - unknown size: treated as large
            log.info("conversations.info %s: %s", channel, e)
            return None
        count = conv.get("num_members")
        if isinstance(count, int):
            self.note_size(client.team_id, channel, count)
            return count
        return None

    async def small(self, client: SlackClient, channel: str) -> bool:
        """Whether the channel's members are bridged one by one (``member_list_limit``)."""
        count = await self.size(client, channel)
        limit = int(cfg.setting(self.connector.config, "member_list_limit"))
        return count is not None and count <= limit

    async def conversation(self, client: SlackClient, channel: str) -> dict[str, Any]:
        data = await client.call("conversations.info", channel=channel)
        conv = data.get("channel")
        return conv if isinstance(conv, dict) else {}

    async def chat_info(self, client: SlackClient, portal: PortalKey) -> ChatInfo:
        parsed = parse_chat_rid(portal.id)
        if parsed is None:
            raise ValueError(f"not a Slack chat: {portal.id}")
        team, channel = parsed
        conv = await self.conversation(client, channel)
        info = ChatInfo(
            name=chat_name(conv),
            topic=chat_topic(conv),
            is_dm=bool(conv.get("is_im")),
            parent=None if conv.get("is_im") or conv.get("is_mpim") else await self.space(client),
        )
        if conv.get("is_im") and conv.get("user"):
            info.dm_user = user_rid(team, str(conv["user"]))
        limit = int(cfg.setting(self.connector.config, "member_list_limit"))
        count = conv.get("num_members")
        if isinstance(count, int):
            self.note_size(team, channel, count)
        if conv.get("is_im") or conv.get("is_mpim") or (isinstance(count, int) and count <= limit):
            info.members, info.members_complete = await self._members(client, channel, limit)
        if conv.get("is_mpim"):
            info.name = await self.connector.dms.group_name(client, info.members) or info.name
        return info

    async def _members(
        self, client: SlackClient, channel: str, limit: int
    ) -> tuple[list[ChatMember], bool]:
        members: list[ChatMember] = []
        cursor = ""
        while True:
            data = await client.call(
                "conversations.members", channel=channel, limit=min(limit, 1000), cursor=cursor
            )
            for uid in data.get("members") or []:
                if isinstance(uid, str) and uid != client.meta.user_id:
                    members.append(ChatMember(user_rid(client.team_id, uid)))
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return members, True
            if len(members) >= limit:
                return members, False
