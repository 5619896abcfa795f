"""Who and what a message names, for the converters: Discord ids -> Matrix (ghosts, the
Matrix users of personal logins, channel and role names) and Matrix pills -> Discord ids.

A Discord user is shown on Matrix by their ghost, except the account of a personal login,
which speaks for its Matrix user (double puppeting): a mention of it pills that user, and a
pill of that user becomes a mention of the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from .ids import user_rid
from .markdown import DiscordChannel, DiscordUser

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

    def __init__(self, connector: DiscordConnector, client: DiscordClient, message: Any) -> None:
        self.connector = connector
        self.client = client
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
        return DiscordChannel(None, str(name)) if name else None

    def role(self, role_id: str) -> str | None:
        guild = self.guild
        role = guild.get_role(int(role_id)) if isinstance(guild, discord.Guild) else None
        return role.name if role is not None else None

    def emoji(self, emoji_id: str, animated: bool) -> str | None:
        return None


class OutboundNames:
    """:class:`~.html_to_markdown.MatrixNames`: pills of ghosts and of personal logins' users
    become Discord mentions."""

    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    def ghost_user_id(self, mxid: str) -> str | None:
        localpart, _, _server = mxid[1:].partition(":")
        rid = self.connector.ghost_remote_id(localpart)
        if rid is not None and rid.isdigit() and self.connector.bridge.ghost_mxid(rid) == mxid:
            return str(rid)
        return discord_account_of(self.connector, mxid)

    def channel_id(self, room: str) -> str | None:
        return None

    def custom_emoji(self, mxc: str) -> tuple[str, str, bool] | None:
        return None
