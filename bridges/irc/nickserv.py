"""Identifying to NickServ when the server offers no SASL, only to the real services.

``PRIVMSG NickServ :IDENTIFY <password>`` goes to whoever holds the nick ``NickServ``; on a
network without services (or while they are split off) anyone can take it and collect
passwords. So the password goes out only when the server vouches for the holder: its
``USERHOST`` reply must match the server's ``services_mask`` (for example
``NickServ!NickServ@services.libera.chat``, a host no user can get). Without a mask, or when the
check fails, nothing is sent and the user is told why. SASL, when the server offers it, is
always preferred (see :mod:`bridges.irc.registration`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from typing import TYPE_CHECKING, Any

from .names import casefold

if TYPE_CHECKING:
    from .puppet import IRCClient

log = logging.getLogger("bridges.irc")

USERHOST_TIMEOUT = 15.0


def matches_mask(mask: str, source: str) -> bool:
    """``source`` (``nick!user@host``) matches the IRC glob ``mask`` (``*`` and ``?``),
    compared case-insensitively (RFC 1459 case mapping)."""
    pattern = "".join("[[]" if c == "[" else "[]]" if c == "]" else c for c in casefold(mask))
    return fnmatch.fnmatchcase(casefold(source), pattern)


def parse_userhost(reply: str, nick: str) -> str | None:
    """``nick!user@host`` for ``nick`` from a ``302`` reply's trailing part, else None."""
    for entry in reply.split():
        name, sep, rest = entry.partition("=")
        if not sep or len(rest) < 2 or casefold(name.rstrip("*")) != casefold(nick):
            continue
        userhost = rest[1:]  # '+' here, '-' away
        if "@" in userhost:
            return f"{name.rstrip('*')}!{userhost}"
    return None


async def identify(client: IRCClient, password: str) -> str | None:
    """Send ``IDENTIFY`` to the configured NickServ if the server vouches for it; returns
    None when sent, else why not (for the user)."""
    server = client.server
    nick = server.nickserv
    if not server.services_mask:
        return (
            f"{server.name} offers no SASL and has no services_mask configured, so the bridge "
            f"cannot tell its {nick} from a user holding that nick"
        )
    conn = client.conn
    if conn is None:
        return "disconnected"

    def reply(msg: Any, fut: asyncio.Future[str | None]) -> None:
        if msg.command == "302":
            fut.set_result(parse_userhost(msg.trailing or "", nick))

    waiting = client.wait_for_line(reply, USERHOST_TIMEOUT)
    if not conn.send_raw_safe("USERHOST", nick):
        waiting.close()
        return "disconnected"
    try:
        source = await waiting
    except (TimeoutError, ConnectionError):
        return f"{server.name} did not answer USERHOST {nick}"
    if source is None:
        return f"{nick} is not on {server.name}"
    if not matches_mask(server.services_mask, source):
        log.warning(
            "%s: %s is %s, which is not the services mask %s: password not sent",
            server.name,
            nick,
            source,
            server.services_mask,
        )
        return f"{nick} on {server.name} is {source}, not the services ({server.services_mask})"
    if client.conn is not conn or not conn.send_raw_safe("PRIVMSG", nick, f"IDENTIFY {password}"):
        return "disconnected"
    return None
