"""DMs and group DMs of personal logins: what their rooms show.

A DM is private to its participants, so its portal belongs to a login (receiver = the
personal login's id): each bridge user in it has their own room, fed by their own gateway
session. discord.py knows a DM channel only from its messages (a bot has no DM list), so the
channel is asked once (``GET /channels/{id}``: its type, recipients and name).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import ChatInfo, ChatMember, PortalKey

from .ids import user_rid

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.dms")

DM = 1
GROUP_DM = 3
#: Names in a group DM's room name when the group has none (Discord allows 10 people).
GROUP_NAMES = 5


def user_name(user: dict[str, Any]) -> str:
    return str(user.get("global_name") or user.get("username") or user.get("id") or "?")


class DirectChats:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def chat_info(self, client: DiscordClient, portal: PortalKey) -> ChatInfo:
        """A DM: the other person (``dm_user``, their ghost in the room); a group DM: its
        name (or its members' names) and everyone in it."""
        gateway = client.gateway
        if gateway is None or not portal.id.isdigit():
            return ChatInfo()
        data = await gateway.http.get_channel(int(portal.id))
        kind = data.get("type")
        others = [
            u
            for u in data.get("recipients") or []
            if isinstance(u, dict)
            and str(u.get("id", "")).isdigit()
            and str(u["id"]) != client.meta.user_id
        ]
        members = [ChatMember(user_rid(u["id"]), name=user_name(u)) for u in others]
        members.append(ChatMember(user_rid(client.meta.user_id), is_me=True))
        if kind == DM and others:
            return ChatInfo(
                name=user_name(others[0]),
                is_dm=True,
                dm_user=user_rid(others[0]["id"]),
                members=members,
                members_complete=True,
            )
        if kind == GROUP_DM:
            names = sorted(user_name(u) for u in others)
            shown = ", ".join(names[:GROUP_NAMES]) + (", …" if len(names) > GROUP_NAMES else "")
            return ChatInfo(
                name=str(data.get("name") or "") or shown or None,
                members=members,
                members_complete=True,
            )
        log.info("Channel %s of %s is no DM (type %s)", portal.id, client.login.id, kind)
        return ChatInfo()
