"""discord.py's client, made a receiver for the bridge.

The bridge keeps no copy of a guild's members or messages in discord.py (no member cache, no
message cache, no chunking: a guild of 50,000 members costs what its channels and roles cost)
and works from gateway events and REST. Every event discord.py parses is handed to the
connector synchronously, in gateway order (:meth:`GatewayClient.dispatch`), before any task
runs: the connector puts it on its channel's queue there, so one channel's events are
bridged in order and other channels' side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord

from .guard import guard_parsers

log = logging.getLogger("bridgekit.discord.gateway")

#: What the bridge asks the gateway for. Message content and members are privileged: the
#: bot's application must have them enabled (bridges/discord/README.md), else Discord closes
#: the connection with 4014.
INTENTS = discord.Intents.default()
INTENTS.message_content = True
INTENTS.members = True
INTENTS.presences = False


class GatewayClient(discord.Client):
    #: Seconds discord.py waits after the last GUILD_CREATE before READY counts as done
    #: (its default; tests against a fake that sends them all at once set less).
    guild_ready_timeout: float = 2.0

    def __init__(
        self,
        on_event: Callable[[str, tuple[Any, ...]], None],
        *,
        intents: discord.Intents = INTENTS,
        http_trace: aiohttp.TraceConfig | None = None,
    ) -> None:
        super().__init__(
            intents=intents,
            max_messages=None,
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=self.guild_ready_timeout,
            http_trace=http_trace,
        )
        self._on_event = on_event
        # Without a member cache discord.py drops GUILD_MEMBER_UPDATE (it updates cached
        # members only): hand the raw dispatch on too (roles.py: power levels, profiles).
        parsers = self._connection.parsers
        parse_member_update = parsers["GUILD_MEMBER_UPDATE"]

        def member_update(data: Any) -> None:
            parse_member_update(data)
            self.dispatch("raw_member_update", data)

        parsers["GUILD_MEMBER_UPDATE"] = member_update
        guard_parsers(self._connection)
        #: Awaited before each IDENTIFY instead of discord.py's fixed 5 s wait (the
        #: connector's backoff and circuit breaker: reconnect.py); None: no wait.
        self.identify_gate: Callable[[bool], Awaitable[None]] | None = None

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if self.identify_gate is not None:
            await self.identify_gate(initial)

    def use_intents(self, intents: discord.Intents) -> None:
        """The intents of the next IDENTIFY (once the application's flags are known, after
        :meth:`login`: intents.py)."""
        self._connection._intents = intents

    def close_code(self) -> int | None:
        """The close code of the gateway connection that just ended, if known."""
        ws = getattr(self, "ws", None)
        code = getattr(ws, "_close_code", None) or getattr(
            getattr(ws, "socket", None), "close_code", None
        )
        return code if isinstance(code, int) else None

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        super().dispatch(event, *args, **kwargs)
        try:
            self._on_event(event, args)
        except Exception:  # noqa: BLE001 - one odd event must not end the session
            log.exception("Discord %s event could not be handed over", event)


class UserGatewayClient(GatewayClient):
    """A person's own account (a user token). discord.py's ``login`` also asks for the bot's
    application (``GET /oauth2/applications/@me``), which a user token has none of (401):
    this login checks the token (``GET /users/@me``) and stops there. REST requests carry the
    token without ``Bot `` (:func:`~.api.user_token_trace`); IDENTIFY sends it as it is."""

    async def login(self, token: str) -> None:
        if self.loop is discord.client._loop:  # type: ignore[attr-defined]
            await self._async_setup_hook()
        data = await self.http.static_login(token.strip())
        self._connection.user = discord.ClientUser(state=self._connection, data=data)
        await self.setup_hook()
