"""``start-chat irc <nick>``: an IRC nick as a remote user (:class:`IdentifierResolver`).

A nick is checked with WHOIS on the user's own connection (made on demand, as ``irc join``
does), so a typo gets "no such user" instead of a room with nobody at the other end. With
several servers the identifier names one: ``libera/nick`` or ``libera nick``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bridgekit.contract.connector import IdentifierResolver, ResolvedIdentifier
from bridgekit.contract.events import RemoteUserID

from .lines import Message, build_line
from .names import validate_nick

if TYPE_CHECKING:
    from .connector import IRCConnector
    from .puppet import IRCClient


async def ensure_client(connector: IRCConnector, server: str, user_mxid: str) -> IRCClient:
    """The user's connection to ``server``, made (and stored as their login) if they have none."""
    client = connector.puppet_of_user(server, user_mxid)
    if client is None:
        info = await connector.make_login(user_mxid, server)
        client = await connector.bridge.add_login(info)  # type: ignore[assignment]
    assert client is not None
    return client


async def nick_exists(client: IRCClient, nick: str, timeout: float = 20) -> bool:
    """Whether ``nick`` is on the server now (WHOIS: 311 yes, 401 no such nick)."""
    assert client.conn is not None
    await asyncio.wait_for(client.conn.ready.wait(), 60)

    def matcher(m: Message, fut: asyncio.Future[bool]) -> None:
        if fut.done() or len(m.params) < 2 or client.fold(m.params[1]) != client.fold(nick):
            return
        if m.command == "311":
            fut.set_result(True)
        elif m.command in ("401", "318"):  # 318 without 311: not there either
            fut.set_result(False)

    waiter = client.wait_for_line(matcher, timeout=timeout)
    await client.conn.send(build_line("WHOIS", nick))
    return bool(await waiter)


class IRCIdentifiers(IdentifierResolver):
    """The IRC connector's half of ``start-chat``."""

    async def resolve_identifier(
        self, user_mxid: str, identifier: str
    ) -> ResolvedIdentifier | None:
        connector: IRCConnector = self  # type: ignore[assignment]
        server, nick = _split(connector, identifier)
        nick = validate_nick(nick)  # InvalidNameError is a ValueError
        client = await ensure_client(connector, server, user_mxid)
        if client.conn is not None and client.conn.is_me(nick):
            raise ValueError("that is your own nick")
        try:
            exists = await nick_exists(client, nick)
        except TimeoutError as e:  # not connected yet, or the server is slow to answer
            raise ConnectionError(f"{server} did not answer in time; try again") from e
        if not exists:
            return None
        client.display.setdefault(client.fold(nick), nick)
        key = client.dm_key(nick)
        return ResolvedIdentifier(client.login.id, RemoteUserID(key.id), nick, key)


def _split(connector: IRCConnector, identifier: str) -> tuple[str, str]:
    """(server, nick) of ``nick``, ``server/nick`` or ``server nick``."""
    words = identifier.split()
    if len(words) == 2:
        server, nick = words
    elif len(words) == 1 and "/" in words[0]:
        server, _, nick = words[0].partition("/")
    elif len(words) == 1 and len(connector.servers) == 1:
        server, nick = next(iter(connector.servers)), words[0]
    elif len(words) == 1:
        raise ValueError(f"which server? Write <server>/{words[0]}: {', '.join(connector.servers)}")
    else:
        raise ValueError("an IRC identifier is one nick")
    if server not in connector.servers:
        raise ValueError(f"no IRC server {server!r} here ({', '.join(connector.servers)})")
    return server, nick
