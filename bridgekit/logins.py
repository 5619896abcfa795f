"""Logins: loading and connecting network clients, and how their connections are doing.

A login's state is reported by its connector. Persistent trouble reaches the user as a notice
in their management room (at once for bad credentials, after ``bridge.state_notice_delay``
for a transient disconnect), and every (re)connect triggers a catch-up of missed messages
where the connector can fetch history.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .contract.connector import (
    BridgeStateEvent,
    LoginInfo,
    NetworkClient,
    NetworkConnector,
)
from .contract.events import RemoteEvent

if TYPE_CHECKING:
    from .config import Config
    from .database.store import Store
    from .portal.backfill import Backfill
    from .portal.presence import PresenceKeeper

log = logging.getLogger("bridgekit")


class LoginState:
    def __init__(self) -> None:
        self.state = BridgeStateEvent.STARTING
        self.message = ""
        self.error = ""
        self.since = time.time()
        self.notified = False
        self.network = ""  # known once the login is loaded


class Logins:
    """Mixed into :class:`~bridgekit.bridge.Bridge`."""

    config: Config
    store: Store
    connectors: Mapping[str, NetworkConnector]
    clients: dict[str, NetworkClient]
    _clients_by_user: dict[str, list[NetworkClient]]
    login_states: dict[str, LoginState]
    presence: PresenceKeeper
    backfill: Backfill
    _connected_by_network: dict[str, int]

    if TYPE_CHECKING:  # provided by Bridge

        def _spawn(self, coro: Any) -> asyncio.Task[Any]: ...

        async def send_notice(self, room_id: str, text: str, html: str | None = None) -> None: ...

        async def queue_remote_event(self, login_id: str | None, event: RemoteEvent) -> None: ...

    def report_state(
        self, login_id: str, state: BridgeStateEvent, message: str = "", error: str = ""
    ) -> None:
        st = self.login_states.setdefault(login_id, LoginState())
        previous = st.state
        if (state, message, error) == (previous, st.message, st.error):
            # Said again (the runtime reports CONNECTING before a client's connect(), which
            # may report it too): nothing changed, so nothing to log or to act on.
            return
        if st.state != state:
            st.since = time.time()
            st.notified = False
        st.state, st.message, st.error = state, message, error
        log.info("Login %s is %s %s", login_id, state.value, message)
        if state in (
            BridgeStateEvent.BAD_CREDENTIALS,
            BridgeStateEvent.LOGGED_OUT,
            BridgeStateEvent.UNKNOWN_ERROR,
        ):
            self._spawn(self._notify_state(login_id, 0))
        elif state == BridgeStateEvent.TRANSIENT_DISCONNECT:
            delay = self.config.settings.bridge.state_notice_delay
            self._spawn(self._notify_state(login_id, delay))
        elif state == BridgeStateEvent.CONNECTED and previous != BridgeStateEvent.CONNECTED:
            self._spawn(self._catch_up(login_id))
        self._count_connected(st.network, previous, state)

    def _count_connected(
        self, network: str, previous: BridgeStateEvent, state: BridgeStateEvent
    ) -> None:
        """Connected logins per network. When none is left, what the network's ghosts'
        presence is has become unknown: it is no longer kept (the homeserver's timeout takes
        them offline) until the connector reports it again."""
        was, now = previous == BridgeStateEvent.CONNECTED, state == BridgeStateEvent.CONNECTED
        if was == now or not network:
            return
        count = self._connected_by_network.get(network, 0) + (1 if now else -1)
        self._connected_by_network[network] = max(count, 0)
        if count <= 0:
            self.presence.forget_network(network)

    async def _catch_up(self, login_id: str) -> None:
        """After a (re)connect, fetch what was said while we were away
        (bridgekit/portal/backfill.py)."""
        try:
            await self.backfill.catch_up(login_id)
        except Exception:
            log.exception("Catch-up of %s could not be queued", login_id)

    async def _notify_state(self, login_id: str, delay: float) -> None:
        """Tell the user in their management room when a disconnect persists."""
        st = self.login_states[login_id]
        state, since = st.state, st.since
        if delay:
            await asyncio.sleep(delay)
        if st.state != state or st.since != since or st.notified:
            return
        st.notified = True
        client = self.clients.get(login_id)
        if client is None:
            return
        user = await self.store.get_user(client.login.user_mxid)
        if user and user.management_room:
            text = f"{client.login.network} login {client.login.remote_name or login_id}: "
            text += f"{state.value}" + (f" ({st.message})" if st.message else "")
            await self.send_notice(user.management_room, text)

    # -- logins --------------------------------------------------------------------------------

    async def _load_client(self, login: LoginInfo) -> NetworkClient:
        connector = self.connectors[login.network]
        client = await connector.load_login(login)
        self.clients[login.id] = client
        self._clients_by_user.setdefault(login.user_mxid, []).append(client)
        self.login_states.setdefault(login.id, LoginState()).network = login.network
        self.report_state(login.id, BridgeStateEvent.CONNECTING)
        self._spawn(self._connect(client))
        return client

    async def _connect(self, client: NetworkClient) -> None:
        try:
            await client.connect()
        except Exception as e:
            log.exception("Login %s failed to connect", client.login.id)
            self.report_state(client.login.id, BridgeStateEvent.UNKNOWN_ERROR, str(e))

    async def add_login(self, login: LoginInfo) -> NetworkClient:
        await self.store.save_login(login)
        return await self._load_client(login)

    async def remove_login(self, login_id: str) -> None:
        client = self.clients.pop(login_id, None)
        if client is not None:
            mine = self._clients_by_user.get(client.login.user_mxid, [])
            if client in mine:
                mine.remove(client)
        if client is not None:
            try:
                await client.disconnect()
                await self.connectors[client.login.network].logout(client.login)
            except Exception:
                log.exception("Error while logging out %s", login_id)
        await self.store.delete_login(login_id)
        self.report_state(login_id, BridgeStateEvent.LOGGED_OUT)
        self.login_states.pop(login_id, None)

    def new_login_id(self) -> str:
        return secrets.token_hex(8)

    def clients_of(self, user_mxid: str, network: str | None = None) -> list[NetworkClient]:
        """A user's live clients (indexed: this runs for every Matrix message)."""
        mine = self._clients_by_user.get(user_mxid, ())
        return [c for c in mine if network is None or c.login.network == network]
