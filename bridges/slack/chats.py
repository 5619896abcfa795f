"""Slack conversations as portals: name, topic, DM partner, the workspace as the space.

Members are not listed here in full: a 5,000-member channel must not turn into 5,000 ghost
joins (matrix-appservice-slack #711). The chat info lists the members of small channels
(``member_list_limit``) and otherwise none; ghosts join as they speak.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import ChatInfo, ChatMember, PortalKey, SpaceInfo

from . import config as cfg
from .ids import parse_chat_rid, user_rid

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.chats")


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


class Chats:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector

    def space(self, client: SlackClient) -> SpaceInfo:
        meta = client.meta
        return SpaceInfo(id=meta.team_id.lower(), name=meta.team_name or meta.team_id)

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
            parent=None if conv.get("is_im") or conv.get("is_mpim") else self.space(client),
        )
        if conv.get("is_im") and conv.get("user"):
            info.dm_user = user_rid(team, str(conv["user"]))
        limit = int(cfg.setting(self.connector.config, "member_list_limit"))
        count = conv.get("num_members")
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
