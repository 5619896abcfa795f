"""What the IRC connector keeps across its connections: who is where, and start limits.

Mixed into :class:`~bridges.irc.connector.IRCConnector`. Kept apart from config, ids and
logins because it is the connector's shared runtime state: the per-server start semaphores
and pacers, the indexes over the connections (by nick, by login, by Matrix user) that spare
a scan of 10,000 connections per message, and the listeners (which connection reports each
channel, and waking an idle one when the last leaves).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, TypeVar

from .pacing import StartPacer

if TYPE_CHECKING:
    from .connector import IRCConnector
    from .puppet import IRCClient

log = logging.getLogger("bridgekit.irc")

_K = TypeVar("_K")


def _drop(index: dict[_K, list[IRCClient]], key: _K, client: IRCClient) -> None:
    entries = index.get(key)
    if entries is not None and client in entries:
        entries.remove(client)
        if not entries:
            del index[key]


class ConnectionRegistries:
    """The registries half of :class:`~bridges.irc.connector.IRCConnector`."""

    def _init_registries(self: IRCConnector) -> None:
        self._puppets: dict[tuple[str, str], IRCClient] = {}
        self._listeners: dict[tuple[str, str], list[str]] = {}
        #: Bumped whenever a listener list changes: connections cache "am I only a follower?"
        #: against it instead of asking per read.
        self.listener_generation = 0
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._pacers: dict[str, StartPacer] = {}
        # Indexes over `clients` (kept by load_login/logout), so that lookups made for every
        # message and every Matrix user do not scan all connections (10,000 of them at scale).
        self._by_remote_id: dict[str, list[IRCClient]] = {}  # logins made with a nick
        self._by_user: dict[tuple[str, str], list[IRCClient]] = {}  # (server, mxid)
        self._per_server: dict[str, int] = {}

    def semaphore(self: IRCConnector, server: str) -> asyncio.Semaphore:
        """Caps the server's connections in connect + registration at once."""
        sem = self._semaphores.get(server)
        if sem is None:
            sem = asyncio.Semaphore(self.servers[server].reconnect_concurrency)
            self._semaphores[server] = sem
        return sem

    def start_pacer(self: IRCConnector, server: str) -> StartPacer:
        """Spaces the server's connection starts (``reconnect.rate`` per second)."""
        pacer = self._pacers.get(server)
        if pacer is None:
            pacer = StartPacer(self.servers[server].reconnect_rate)
            self._pacers[server] = pacer
        return pacer

    def set_puppet_nick(
        self: IRCConnector, client: IRCClient, old: str | None, new: str | None
    ) -> None:
        if old is not None:
            key = (client.server_name, self.fold(old))
            if self._puppets.get(key) is client:
                del self._puppets[key]
        if new is not None:
            self._puppets[(client.server_name, self.fold(new))] = client

    def puppet_for(self: IRCConnector, server: str, folded_nick: str) -> IRCClient | None:
        return self._puppets.get((server, folded_nick))

    def puppet_by_remote_id(self: IRCConnector, remote_id: str) -> IRCClient | None:
        """The connection using that nick now, else the login made with it."""
        server, _, folded = remote_id.partition("/")
        found = self._puppets.get((server, folded))
        if found is not None:
            return found
        same_nick = self._by_remote_id.get(remote_id)
        return same_nick[0] if same_nick else None

    def puppet_of_user(self: IRCConnector, server: str, mxid: str) -> IRCClient | None:
        clients = self._by_user.get((server, mxid))
        return clients[0] if clients else None

    def _index(self: IRCConnector, client: IRCClient) -> None:
        login = client.login
        self._by_remote_id.setdefault(login.remote_id, []).append(client)
        self._by_user.setdefault((client.server_name, login.user_mxid), []).append(client)
        self._per_server[client.server_name] = self._per_server.get(client.server_name, 0) + 1

    def _unindex(self: IRCConnector, client: IRCClient) -> None:
        login = client.login
        _drop(self._by_remote_id, login.remote_id, client)
        _drop(self._by_user, (client.server_name, login.user_mxid), client)
        self._per_server[client.server_name] = self._per_server.get(client.server_name, 1) - 1
        self._full_warned.discard(client.server_name)

    def add_listener(self: IRCConnector, client: IRCClient, folded_channel: str) -> None:
        lst = self._listeners.setdefault((client.server_name, folded_channel), [])
        if client.login.id not in lst:
            lst.append(client.login.id)
            self.listener_generation += 1

    def remove_listener(self: IRCConnector, client: IRCClient, folded_channel: str) -> None:
        key = (client.server_name, folded_channel)
        lst = self._listeners.get(key)
        if lst and client.login.id in lst:
            was_first = lst[0] == client.login.id
            lst.remove(client.login.id)
            self.listener_generation += 1
            if was_first and lst and not self._stopping:
                successor = self.clients.get(lst[0])
                if successor is not None:  # it reports the channel now: learn its modes
                    successor.query_modes(folded_channel)
            if not lst:
                del self._listeners[key]
                if not self._stopping:
                    # Decided once the leaving client is done with its own state (a PART
                    # drops the channel from ``wanted`` after this call).
                    asyncio.get_running_loop().call_soon(self._keep_an_ear, client, key)

    def _keep_an_ear(self: IRCConnector, leaving: IRCClient, key: tuple[str, str]) -> None:
        """The bridge's last connection in a channel left it. If a user still wants the
        channel but their connection was closed as idle, bring that one back: the portal
        hears IRC only through a connection in the channel."""
        server, folded = key
        if self._stopping or key in self._listeners:
            return
        sleepers: list[IRCClient] = []
        # The leaving one first: a dropped connection that rejoins by itself (every one of
        # them after an ircd restart) settles it without a scan of all connections.
        for client in (leaving, *self.clients.values()):
            conn = client.conn
            if client.server_name != server or conn is None or folded not in client.wanted:
                continue
            if not conn.idle:
                if folded not in client.join_refused and client.login.id in self.clients:
                    return  # connected or reconnecting: it joins by itself
                continue
            if client is not leaving:
                sleepers.append(client)
        if sleepers:
            woken = sleepers[0]
            log.info("%s: no connection left in %s; waking %s", server, folded, woken.login.id)
            woken.touch()
            woken.conn.start()

    def sole_ear(self: IRCConnector, client: IRCClient, folded_channel: str) -> bool:
        """Whether the bridge has no connection but ``client`` in the channel: the portal's
        only ear, which the idle timeout must not close."""
        others = self._listeners.get((client.server_name, folded_channel), ())
        return all(login_id == client.login.id for login_id in others)

    def is_listener(self: IRCConnector, client: IRCClient, folded_channel: str) -> bool:
        lst = self._listeners.get((client.server_name, folded_channel))
        return bool(lst) and lst[0] == client.login.id
