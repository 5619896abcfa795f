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
from collections.abc import Callable
from typing import Any

import aiohttp
import discord

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
        guard_parsers(self._connection.parsers)

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        super().dispatch(event, *args, **kwargs)
        self._on_event(event, args)


def guard_parsers(parsers: dict[str, Callable[[Any], None]]) -> None:
    """A dispatch discord.py cannot parse (a field missing, a wrong type) is logged and
    skipped: unguarded, its exception would end the gateway connection, and the next event
    of the same kind after a RESUME would end it again."""
    for name, parse in list(parsers.items()):
        parsers[name] = _guarded(name, parse)


def _guarded(name: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
    def guarded(data: Any) -> None:
        try:
            parse(data)
        except Exception as e:  # noqa: BLE001 - malformed input from the network
            log.warning("Discord %s dispatch skipped: it could not be read (%r)", name, e)

    return guarded
