"""The :class:`~bridgekit.contract.connector.BridgeAPI` each connector gets: the runtime seen from
one network.

The runtime serves several networks in one process. A connector speaks of its objects by
remote id alone (a nick, a JID, a msgid), which means nothing without its network; so each
connector is handed a view bound to its own network, and the view passes that network
explicitly to the runtime on every call. A lookup can then never land in another network's
tables (an IRC nick looked up as an XMPP user), and the runtime never guesses which network
asked (it used to, and failed with ``KeyError('')`` when two were loaded).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mautrix.types import RoomID, UserID

from .contract.connector import (
    BridgeAPI,
    BridgeStateEvent,
    LoginInfo,
    MediaError,
    NetworkClient,
    NetworkConnector,
)
from .contract.events import PortalKey, RemoteEvent, RemoteMessageID, RemoteUserID
from .database.store import Store
from .logins import LoginService
from .matrix.client import MatrixClient, with_retries
from .matrix.encrypted_media import download
from .matrix.fetcher import MediaFetcher
from .notices import Notices
from .objects.ghost import Ghosts
from .objects.metadata import MetadataTypes
from .objects.portal import Portal, Portals
from .outbox.writer import OutboxWriter

__all__ = ["NetworkBridge", "NetworkServices"]

log = logging.getLogger("bridgekit.network_api")


class OpenRoom(Protocol):
    """The portal service's ``rooms.get_or_create`` (built after the connectors' views)."""

    async def __call__(
        self, network: str, key: PortalKey, login_id: str | None, *, alias_localpart: str | None
    ) -> Portal | None: ...


@dataclass(frozen=True, slots=True)
class NetworkServices:
    """The runtime's services every network's view reaches (one set, shared by all views).
    The callables reach what is built after the connectors or belongs to the runtime's own
    configuration (signed media links, secrets)."""

    domain: str
    store: Store
    matrix: MatrixClient
    logins: LoginService
    notices: Notices
    outbox: OutboxWriter
    connectors: Mapping[str, NetworkConnector]
    meta_types: MetadataTypes
    portals: Portals
    ghosts: Ghosts
    media_url: Callable[[str, str], Awaitable[str]]
    secret_key: Callable[[str], bytes]
    open_room: OpenRoom
    get_or_create_user: Callable[[str], Awaitable[Any]]
    upload_avatar: Callable[[bytes, str], Awaitable[str]]
    #: The guarded fetcher of remote media (``media.*`` settings), for :meth:`fetch_media`.
    fetcher: MediaFetcher | None = None


class NetworkBridge(BridgeAPI):
    """:class:`BridgeAPI` for the connector named ``network``, forwarding to the runtime's
    services."""

    def __init__(self, services: NetworkServices, network: str) -> None:
        self._services = services
        self._store = services.store
        self._logins = services.logins
        self._clients = services.logins.clients
        self._outbox = services.outbox
        self._notices = services.notices
        self.network = network
        self.domain = services.domain

    def __repr__(self) -> str:
        return f"NetworkBridge({self.network!r})"

    def _own_login(self, login_id: str | None) -> None:
        """Refuse a login id of another network (a login not loaded yet is let through:
        the runtime ignores what it does not know)."""
        client = self._clients.get(login_id) if login_id else None
        if client is not None and client.login.network != self.network:
            network = client.login.network
            raise ValueError(f"login {login_id} is a {network} login, not {self.network}")

    def _own_event(self, login_id: str | None, event: RemoteEvent) -> RemoteEvent:
        self._own_login(login_id)
        if event.network and event.network != self.network:
            raise ValueError(f"a {self.network} connector queued a {event.network} event")
        event.network = self.network
        return event

    # -- events and state ----------------------------------------------------------------------

    async def queue_remote_event(self, login_id: str | None, event: RemoteEvent) -> None:
        await self._outbox.queue(login_id, self._own_event(login_id, event))

    def queue_remote_event_soon(self, login_id: str | None, event: RemoteEvent) -> None:
        self._outbox.queue_soon(login_id, self._own_event(login_id, event))

    def report_state(
        self,
        login_id: str,
        state: BridgeStateEvent,
        message: str = "",
        error: str = "",
        *,
        notify: bool = True,
    ) -> None:
        self._own_login(login_id)
        self._logins.report_state(login_id, state, message, error, notify=notify)

    # -- lookups, within this network ----------------------------------------------------------

    async def find_message(self, portal: PortalKey, remote_id: RemoteMessageID) -> str | None:
        row = await self._store.message_by_remote(self.network, portal, remote_id)
        return row.event_id if row else None

    async def find_remote_id(self, portal: PortalKey, event_id: str) -> str | None:
        row = await self._store.message_in_portal(self.network, portal, event_id)
        return row.remote_id if row else None

    async def has_room(self, portal: PortalKey) -> bool:
        row = await self._services.portals.get(self.network, portal)
        return row is not None and bool(row.mxid)

    async def portal_room(self, portal: PortalKey) -> str | None:
        row = await self._services.portals.get(self.network, portal)
        return row.mxid if row is not None else None

    async def portal_of_room(self, room_id: str) -> PortalKey | None:
        row = await self._services.portals.by_room(room_id)
        return row.key if row is not None and row.network == self.network else None

    def ghost_mxid(self, remote_user_id: RemoteUserID) -> str:
        localpart = self._services.connectors[self.network].ghost_localpart(remote_user_id)
        return f"@{localpart}:{self.domain}"

    # -- storage, media, users -----------------------------------------------------------------

    def _kv_key(self, key: str) -> str:
        """Each network's keys apart from the others' and the runtime's (the connectors'
        migrations moved the keys stored before under this prefix)."""
        return f"net:{self.network}:{key}"

    async def get_kv(self, key: str) -> str | None:
        return await self._store.get_kv(self._kv_key(key))

    async def set_kv(self, key: str, value: str | None) -> None:
        await self._store.set_kv(self._kv_key(key), value)

    # -- typed metadata (database/net_metadata.py)
    # --------------------------------------------------------

    def _meta_type(self, kind: str) -> type:
        return self._services.meta_types(self.network, kind)

    async def _get_meta(self, kind: str, key: tuple[str, ...]) -> Any:
        store = self._store.net_metadata
        return await store.get(kind, self.network, key, self._meta_type(kind))

    async def _set_meta(self, kind: str, key: tuple[str, ...], value: Any) -> None:
        self._services.meta_types.check(self.network, kind, value)
        await self._store.net_metadata.set(kind, self.network, key, value)

    # Portals and ghosts own their metadata (bridgekit/objects).
    async def portal_metadata(self, portal: PortalKey) -> Any:
        return await self._services.portals.net_metadata(self.network, portal)

    async def set_portal_metadata(self, portal: PortalKey, value: Any) -> None:
        await self._services.portals.set_net_metadata(self.network, portal, value)

    async def ghost_metadata(self, remote_user_id: RemoteUserID) -> Any:
        return await self._services.ghosts.net_metadata(self.network, remote_user_id)

    async def set_ghost_metadata(self, remote_user_id: RemoteUserID, value: Any) -> None:
        await self._services.ghosts.set_net_metadata(self.network, remote_user_id, value)

    async def login_metadata(self, login_id: str) -> Any:
        self._own_login(login_id)
        login = self._logins.get(login_id)
        if login is None:  # not loaded (yet: a connector's load_login may read it)
            return await self._get_meta("login", (login_id,))
        return await login.metadata(self._meta_type("login"))

    async def set_login_metadata(self, login_id: str, value: Any) -> None:
        self._own_login(login_id)
        login = self._logins.get(login_id)
        if login is None:
            await self._set_meta("login", (login_id,), value)
            return
        self._services.meta_types.check(self.network, "login", value)
        await login.set_metadata(value)

    async def media_url(self, mxc: str, filename: str = "") -> str:
        return await self._services.media_url(mxc, filename)

    async def upload_media(self, data: bytes, mime_type: str, filename: str = "") -> str:
        bot = self._services.matrix.bot
        assert bot is not None
        return str(
            await with_retries(
                lambda: bot.upload_media(data, mime_type=mime_type, filename=filename or None),
                what="uploading media",
                max_attempts=5,
            )
        )

    async def fetch_media(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = None,
        follow_redirects: bool = True,
    ) -> tuple[bytes, str]:
        fetcher = self._services.fetcher
        if fetcher is None:
            raise MediaError("the bridge fetches no remote media")
        data, mime = await fetcher.fetch(
            url,
            headers=dict(headers) if headers else None,
            max_size=max_size,
            follow_redirects=follow_redirects,
        )
        return bytes(data), mime

    async def download_media(self, mxc: str, max_size: int) -> tuple[bytes, str]:
        return await download(self._services.matrix, mxc, max_size)

    def secret_key(self, purpose: str) -> bytes:
        return self._services.secret_key(purpose)

    async def matrix_displayname(self, mxid: str) -> str | None:
        bot = self._services.matrix.bot
        assert bot is not None
        try:
            name = await bot.get_displayname(mxid)
        except Exception:
            return None
        return str(name) if name else None

    # -- notices and rooms ---------------------------------------------------------------------

    async def notify_user(self, user_mxid: str, text: str) -> bool:
        return await self._notices.notify_user(user_mxid, text)

    async def notify_portal(self, portal: PortalKey, text: str) -> bool:
        return await self._notices.notify_portal(self.network, portal, text)

    async def invite_to_portal(
        self, login_id: str, portal: PortalKey, reason: str = ""
    ) -> str | None:
        self._own_login(login_id)
        return await self._notices.invite_to_portal(login_id, portal, reason)

    async def remove_from_portal(self, login_id: str, portal: PortalKey, reason: str) -> bool:
        self._own_login(login_id)
        return await self._notices.remove_from_portal(login_id, portal, reason)

    async def open_portal(
        self, portal: PortalKey, user_mxid: str, alias_localpart: str | None = None
    ) -> str | None:
        if portal.receiver:
            raise ValueError("open_portal is for shared portals; a 1:1 chat: invite_to_portal")
        created = await self._services.open_room(
            self.network, portal, None, alias_localpart=alias_localpart
        )
        if created is None or not created.mxid:
            return None
        bot = self._services.matrix.bot  # a shared room is made with nobody invited
        assert bot is not None
        try:
            await bot.invite_user(RoomID(created.mxid), UserID(user_mxid))
        except Exception as e:  # already in the room, or the bot may not invite
            log.info("Could not invite %s to %s: %s", user_mxid, created.mxid, e)
        return created.mxid

    # -- logins --------------------------------------------------------------------------------

    async def add_login(self, login: LoginInfo) -> NetworkClient:
        if login.network != self.network:
            raise ValueError(f"a {self.network} connector added a {login.network} login")
        await self._services.get_or_create_user(login.user_mxid)
        return await self._logins.add_login(login)

    async def remove_login(self, login_id: str) -> None:
        self._own_login(login_id)
        await self._logins.remove_login(login_id)

    # -- ghost info ----------------------------------------------------------------------------

    async def upload_avatar(self, data: bytes, mime_type: str) -> str:
        return await self._services.upload_avatar(data, mime_type)

    async def ghost_is_bot(self, remote_user_id: RemoteUserID) -> bool:
        ghost = await self._store.get_ghost(self.network, remote_user_id)
        return ghost is not None and ghost.is_bot
