"""Malformed gateway dispatches are logged and skipped, never the end of a session.

discord.py parses each dispatch with a parser of its ``ConnectionState`` called straight from
the websocket's read loop: a parser that raises (a MESSAGE_CREATE without ``author``, a
``channel_id`` that is not a snowflake, ...) ends ``Client.connect`` with that exception, so
one odd event from the gateway (or a fake one) would stop the login. Each parser is wrapped
here: the event's type and the error are logged (not its data: it may hold message text) and
the session goes on with the next event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bridgekit.discord.gateway")


def _guarded(event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
    def parse_or_skip(data: Any) -> None:
        try:
            parse(data)
        except Exception as e:  # noqa: BLE001 - untrusted input: logged, skipped
            log.warning(
                "Discord %s dispatch skipped: malformed (%s: %s)", event, type(e).__name__, e
            )

    return parse_or_skip


def guard_parsers(state: Any) -> None:
    """Wraps every parser of a discord.py ``ConnectionState`` (``state.parsers``)."""
    parsers = getattr(state, "parsers", None)
    if isinstance(parsers, dict):
        for event, parse in list(parsers.items()):
            parsers[event] = _guarded(event, parse)
