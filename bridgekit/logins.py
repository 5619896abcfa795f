"""The login service: loading and connecting network clients, and how their connections are doing.

Each loaded login is a :class:`~bridgekit.objects.user_login.UserLogin` (its row, metadata,
client and state), each user with logins a :class:`~bridgekit.objects.user.User`; this service
makes one object per login and per user and keeps them. ``clients`` (login id -> client) and
``states`` (login id -> state) are indexes of those objects, handed to the services that look
clients up by id.

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
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from .contract.connector import BridgeStateEvent, LoginInfo, NetworkClient, NetworkConnector
from .database.store import Store
from .objects.user import User
from .objects.user_login import LoginState, UserLogin
from .portal.presence import PresenceKeeper
from .settings import BridgeSettings

__all__ = ["LoginService", "LoginState"]

log = logging.getLogger("bridgekit")

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class LoginService:
    """The logins of all users (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        connectors: Mapping[str, NetworkConnector],
        settings: BridgeSettings,
        presence: PresenceKeeper,
        spawn: Spawn,
        notify_user: Callable[[str, str], Awaitable[bool]],
        catch_up: Callable[[str], Awaitable[None]],
    ) -> None:
        """``notify_user`` (the notices service) and ``catch_up`` (backfill) are built after
        this service: pass callables that reach them late."""
        self.store = store
        self.connectors = connectors
        self.settings = settings
        self.presence = presence
        self._spawn = spawn
        self._notify_user = notify_user
        self._catch_up_login = catch_up
        self.logins: dict[str, UserLogin] = {}
        self.users: dict[str, User] = {}
        #: Indexes of the objects above, by login id (see the module docstring).
        self.clients: dict[str, NetworkClient] = {}
        self.states: dict[str, LoginState] = {}
        self._connected_by_network: dict[str, int] = {}

    # -- objects -------------------------------------------------------------------------------

    def get(self, login_id: str) -> UserLogin | None:
        """A loaded login."""
        return self.logins.get(login_id)

    def user(self, mxid: str) -> User:
        """The user ``mxid`` (made on first use: its row is read from the store when asked)."""
        user = self.users.get(mxid)
        if user is None:
            user = self.users[mxid] = User(mxid, self.store.users)
        return user

    def clients_of(self, user_mxid: str, network: str | None = None) -> list[NetworkClient]:
        """A user's live clients (indexed: this runs for every Matrix message)."""
        user = self.users.get(user_mxid)
        if user is None:
            return []
        return [ul.client for ul in user.logins if network is None or ul.network == network]

    # -- state ---------------------------------------------------------------------------------

    def report_state(
        self,
        login_id: str,
        state: BridgeStateEvent,
        message: str = "",
        error: str = "",
        *,
        notify: bool = True,
    ) -> None:
        """``notify=False``: the user knows already (told before a restart): no notice."""
        st = self.states.get(login_id)
        if st is None:
            st = self.states[login_id] = LoginState()
        previous = st.state
        if (state, message, error) == (previous, st.message, st.error):
            # Said again (the runtime reports CONNECTING before a client's connect(), which
            # may report it too): nothing changed, so nothing to log or to act on.
            return
        if st.state != state:
            st.since = time.time()
            st.notified = False
        if not notify:
            st.notified = True
        st.state, st.message, st.error = state, message, error
        log.info("Login %s is %s %s", login_id, state.value, message)
        if state in (
            BridgeStateEvent.BAD_CREDENTIALS,
            BridgeStateEvent.LOGGED_OUT,
            BridgeStateEvent.UNKNOWN_ERROR,
        ):
            self._spawn(self._notify_state(login_id, 0))
        elif state == BridgeStateEvent.TRANSIENT_DISCONNECT:
            self._spawn(self._notify_state(login_id, self.settings.state_notice_delay))
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
            await self._catch_up_login(login_id)
        except Exception:
            log.exception("Catch-up of %s could not be queued", login_id)

    async def _notify_state(self, login_id: str, delay: float) -> None:
        """Tell the user in their management room when a disconnect persists."""
        st = self.states.get(login_id)
        if st is None:  # removed since (remove_login reports LOGGED_OUT, then forgets it)
            return
        state, since = st.state, st.since
        if delay:
            await asyncio.sleep(delay)
        if st.state != state or st.since != since or st.notified:
            return
        st.notified = True
        login = self.logins.get(login_id)
        if login is None:
            return
        text = f"{login.network} login {login.remote_name or login_id}: "
        text += f"{state.value}" + (f" ({st.message})" if st.message else "")
        await self._notify_user(login.user_mxid, text)

    # -- logins --------------------------------------------------------------------------------

    async def load(self, login: LoginInfo) -> NetworkClient:
        """Load a stored login into its connector, and start connecting it. A login loaded
        already under the same id (logging in again after its credentials died) is replaced:
        its old client (unless the connector hands the same one back) is disconnected and
        leaves the user's logins."""
        connector = self.connectors[login.network]
        client = await connector.load_login(login)
        await self._replace(login.id, client)
        state = self.states.get(login.id)
        if state is None:
            state = self.states[login.id] = LoginState()
        state.network = login.network
        user_login = UserLogin(login, client, state, self.store.net_metadata)
        self.logins[login.id] = user_login
        self.clients[login.id] = client
        self.user(login.user_mxid).logins.append(user_login)
        self.report_state(login.id, BridgeStateEvent.CONNECTING)
        self._spawn(self._connect(client))
        return client

    async def _connect(self, client: NetworkClient) -> None:
        try:
            await client.connect()
        except Exception as e:
            log.exception("Login %s failed to connect", client.login.id)
            self.report_state(client.login.id, BridgeStateEvent.UNKNOWN_ERROR, str(e))

    async def _replace(self, login_id: str, client: NetworkClient) -> None:
        old = self.logins.pop(login_id, None)
        if old is None:
            return
        user = self.users.get(old.user_mxid)
        if user is not None and old in user.logins:
            user.logins.remove(old)
        self.clients.pop(login_id, None)
        if old.client is client:  # the connector reuses its live client (xmpp auto_login)
            return
        try:
            await asyncio.wait_for(old.client.disconnect(), 10)
        except Exception:
            log.exception("Error disconnecting the replaced login %s", login_id)

    async def add_login(self, login: LoginInfo) -> NetworkClient:
        await self.store.save_login(login)
        return await self.load(login)

    async def remove_login(self, login_id: str) -> None:
        user_login = self.logins.pop(login_id, None)
        if user_login is not None:
            mine = self.users[user_login.user_mxid].logins
            if user_login in mine:
                mine.remove(user_login)
        client = self.clients.pop(login_id, None)
        if client is not None:
            try:
                await client.disconnect()
                await self.connectors[client.login.network].logout(client.login)
            except Exception:
                log.exception("Error while logging out %s", login_id)
        await self.store.delete_login(login_id)
        self.report_state(login_id, BridgeStateEvent.LOGGED_OUT)
        self.states.pop(login_id, None)

    def new_login_id(self) -> str:
        return secrets.token_hex(8)

    async def disconnect_all(self) -> None:
        """At stop: every live client disconnects (10 s each at most)."""
        for client in list(self.clients.values()):
            try:
                await asyncio.wait_for(client.disconnect(), 10)
            except Exception:
                log.exception("Error disconnecting %s", client.login.id)

    def status(self) -> dict[str, dict[str, Any]]:
        """The loaded logins, for the bridge's status page."""
        return {
            lid: {
                "network": c.login.network,
                "user": c.login.user_mxid,
                "remote_id": c.login.remote_id,
                "remote_name": c.login.remote_name,
                "state": self.states.get(lid, LoginState()).state.value,
                "message": self.states.get(lid, LoginState()).message,
            }
            for lid, c in self.clients.items()
        }
