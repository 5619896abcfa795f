"""``start-chat discord <who>``: open a DM through the person's own Discord login.

``<who>`` is a Discord user id, a mention as Discord writes it (``<@id>``), or a ghost's
Matrix id. Discord has no lookup of people by name for a bridge, so names are not taken.
The DM is opened with the person's user token (``POST /users/@me/channels``), so it is
theirs on Discord too; a person with only a bot login cannot start one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

import discord

from bridgekit.contract.capabilities import IdentifierResolver, ResolvedIdentifier
from bridgekit.contract.events import PortalKey

from .ids import is_snowflake, portal_key, user_rid
from .state import USER

if TYPE_CHECKING:
    from .connector import DiscordConnector

_MENTION_RE = re.compile(r"^<@!?([0-9]{1,20})>$")


class DiscordStartChat(IdentifierResolver):
    """The connector's :class:`IdentifierResolver` (a mixin of :class:`DiscordConnector`)."""

    def _user_id(self, who: str) -> str:
        connector = cast("DiscordConnector", self)
        mention = _MENTION_RE.match(who)
        if mention:
            return mention.group(1)
        if who.startswith("@") and ":" in who:
            rid = connector.ghost_remote_id(who[1:].split(":", 1)[0])
            if rid is None or not is_snowflake(rid):
                raise ValueError("that Matrix user is not a Discord user")
            return rid
        if is_snowflake(who):
            return who
        raise ValueError("say who: a Discord user id, <@id>, or a Discord user's Matrix id")

    async def resolve_identifier(
        self, user_mxid: str, identifier: str
    ) -> ResolvedIdentifier | None:
        connector = cast("DiscordConnector", self)
        logins = [
            c
            for c in connector.clients.values()
            if c.login.user_mxid == user_mxid
            and c.meta.kind == USER
            and not c.dead
            and c.gateway is not None
        ]
        if not logins:
            raise ValueError("starting a Discord DM needs your own login (`login discord user`)")
        uid = self._user_id(identifier.strip())
        client = logins[0]
        if uid == client.meta.user_id:
            raise ValueError("that is your own account")
        assert client.gateway is not None
        try:
            user = await client.gateway.fetch_user(int(uid))
        except discord.NotFound:
            return None
        except discord.HTTPException as e:
            raise ConnectionError(f"Discord answered {e.status}") from None
        return ResolvedIdentifier(client.login.id, user_rid(uid), user.global_name or user.name)

    async def create_dm(self, resolved: ResolvedIdentifier) -> PortalKey:
        client = cast("DiscordConnector", self).clients[resolved.login_id]
        assert client.gateway is not None
        try:
            data = await client.gateway.http.start_private_message(int(resolved.user_id))
        except discord.HTTPException as e:
            raise ConnectionError(f"Discord did not open the DM ({e.status})") from None
        channel = str(data.get("id") or "")
        if not is_snowflake(channel):
            raise ConnectionError("Discord opened no DM")
        return portal_key(channel, client.login.id)
