"""Who and what a message names, for the converters: Discord ids -> Matrix (ghosts, the
Matrix users of personal logins, channel and role names) and Matrix pills -> Discord ids.

A Discord user is shown on Matrix by their ghost, except the account of a personal login,
which speaks for its Matrix user (double puppeting): a mention of it pills that user, and a
pill of that user becomes a mention of the account.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import discord

from .ids import portal_key, user_rid
from .markdown import DiscordChannel, DiscordUser, mentioned_ids

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector


def matrix_user_of(connector: DiscordConnector, user_id: int | str) -> str | None:
    """The Matrix user a Discord account speaks for (a personal login's), else None."""
    for client in connector.clients.values():
        if not client.is_bot and not client.dead and client.meta.user_id == str(user_id):
            return client.login.user_mxid
    return None


def discord_account_of(connector: DiscordConnector, mxid: str) -> str | None:
    """The Discord account of a Matrix user's personal login, else None."""
    for client in connector.clients.values():
        if not client.is_bot and not client.dead and client.login.user_mxid == mxid:
            return client.meta.user_id
    return None


class InboundNames:
    """:class:`~.markdown.DiscordNames` for one Discord message: the users it mentions are in
    the message itself (Discord resolves them), channels and roles in discord.py's cache."""

    def __init__(
        self,
        connector: DiscordConnector,
        client: DiscordClient,
        message: Any,
        rooms: dict[str, str] | None = None,
    ) -> None:
        self.connector = connector
        self.client = client
        #: channel id -> its portal's room, resolved beforehand (:func:`portal_rooms`)
        self.rooms = rooms or {}
        self.mentioned = {str(u.id): u for u in getattr(message, "mentions", None) or []}
        self.guild = getattr(message, "guild", None)

    def user(self, user_id: str) -> DiscordUser | None:
        mxid = matrix_user_of(self.connector, user_id)
        if mxid is None:
            mxid = self.connector.bridge.ghost_mxid(user_rid(user_id))
        user = self.mentioned.get(user_id)
        gateway = self.client.gateway
        if user is None and gateway is not None:
            user = gateway.get_user(int(user_id))
        return DiscordUser(mxid, user.display_name if user is not None else user_id)

    def channel(self, channel_id: str) -> DiscordChannel | None:
        channel = self.client.channel(int(channel_id))
        name = getattr(channel, "name", None)
        room = self.rooms.get(channel_id)
        if not name and room is None:
            return None
        return DiscordChannel(room, str(name or "channel"))

    def role(self, role_id: str) -> str | None:
        guild = self.guild
        role = guild.get_role(int(role_id)) if isinstance(guild, discord.Guild) else None
        return role.name if role is not None else None

    def emoji(self, emoji_id: str, animated: bool) -> str | None:
        return None


class OutboundNames:
    """:class:`~.html_to_markdown.MatrixNames`: pills of ghosts and of personal logins' users
    become Discord mentions."""

    def __init__(self, connector: DiscordConnector, channels: dict[str, str] | None = None) -> None:
        self.connector = connector
        #: room id -> the channel it bridges, resolved beforehand (:func:`room_channels`)
        self.channels = channels or {}

    def ghost_user_id(self, mxid: str) -> str | None:
        localpart, _, _server = mxid[1:].partition(":")
        rid = self.connector.ghost_remote_id(localpart)
        if rid is not None and rid.isdigit() and self.connector.bridge.ghost_mxid(rid) == mxid:
            return str(rid)
        return discord_account_of(self.connector, mxid)

    def channel_id(self, room: str) -> str | None:
        return self.channels.get(room)

    def custom_emoji(self, mxc: str) -> tuple[str, str, bool] | None:
        return None


#: Channel links resolved per message (a message naming more shows the rest as names).
MAX_LINKS = 20
_ROOM_LINK_RE = re.compile(
    r"(?:matrix\.to/#/|matrix:roomid/)((?:!|%21)[^/?#\"'\s<>]+)", re.IGNORECASE
)


async def portal_rooms(
    connector: DiscordConnector, client: DiscordClient, text: str
) -> dict[str, str]:
    """The rooms of the channels ``text`` mentions (``<#id>``) that have portals."""
    rooms: dict[str, str] = {}
    for channel_id in sorted(mentioned_ids(text)["channels"])[:MAX_LINKS]:
        channel = client.channel(int(channel_id))
        key = (
            connector.portal_of(client, channel) if channel is not None else portal_key(channel_id)
        )
        room = await connector.bridge.portal_room(key)
        if room:
            rooms[channel_id] = room
    return rooms


async def room_channels(connector: DiscordConnector, html: str | None) -> dict[str, str]:
    """The Discord channels of the rooms ``html`` links to (``matrix.to`` room-id pills),
    for the rooms that are this network's guild channel portals."""
    channels: dict[str, str] = {}
    for match in list(_ROOM_LINK_RE.finditer(html or ""))[:MAX_LINKS]:
        room = unquote(match.group(1))
        if room in channels:
            continue
        key = await connector.bridge.portal_of_room(room)
        if key is not None and not key.receiver and key.id.isdigit():
            channels[room] = str(key.id)
    return channels
