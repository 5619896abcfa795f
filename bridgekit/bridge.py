"""The runtime: wires the appservice server, store, Matrix client, connectors and queues.

Data flow (see the README picture):

* homeserver -> ``PUT /transactions`` -> body committed to ``appservice_txn`` (SQLite: in the
  inbox file, database/inbox.py) -> 200 -> :class:`~bridgekit.outbox.ordering.OrderedExecutor`
  keyed by room -> :mod:`bridgekit.matrix.router`. A transaction is marked finished once all its
  events are handled; after a crash the unfinished ones are replayed (handlers skip events
  already bridged).
* connector -> :meth:`Bridge.queue_remote_event` -> row committed to ``outbox`` (group commit)
  -> executor keyed by portal -> :mod:`bridgekit.portal.remote_to_matrix` -> Matrix, retried
  until it succeeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from mautrix.types import PresenceState
from mautrix.util.async_db import Database

from . import __version__, process_tuning
from .commands.processor import CommandProcessor
from .commands.runtime import CommandRuntime
from .config import Config
from .connectors import connector_for_ghost, discover_connectors, thirdparty_lookup
from .contract.connector import (
    BridgeStateEvent,
    LoginInfo,
    NetworkClient,
    NetworkConnector,
)
from .contract.events import PortalKey, RemoteEvent, RemoteUserID
from .crypto.wiring import Encryption, build_encryption, start_encryption
from .database.db import create_database, migrate, open_database, package_migrations
from .database.inbox import inbox_url, open_inbox
from .database.store import OutboxItem, Store
from .instance_lock import InstanceLock
from .logins import LoginService
from .matrix.appservice import AppServiceServer, TxnKey
from .matrix.bot_setup import set_up_bot
from .matrix.client import MatrixClient
from .matrix.encrypted_media import KEYS as ENCRYPTED_FILES
from .matrix.encrypted_media import add_link_route
from .matrix.fetcher import MediaFetcher
from .matrix.media import MediaServer, MediaSigner
from .matrix.media import public_base as media_public_base
from .matrix.message_status import StatusReporter
from .matrix.router import MatrixRouter
from .metrics import Metrics
from .network_api import NetworkBridge, NetworkServices
from .notices import Notices
from .objects import Ghosts, MetadataTypes, Portals
from .outbox import remote_queue
from .outbox.ordering import OrderedExecutor
from .outbox.parking import Parking
from .outbox.transactions import Transactions
from .outbox.writer import OutboxWriter
from .portal.alias_rooms import AliasRooms
from .portal.backfill import Backfill
from .portal.portals import PortalService
from .portal.presence import PresenceKeeper
from .portal.spaces import Spaces
from .portal.upgrades import RoomUpgrades

log = logging.getLogger("bridgekit")


class Bridge:
    """The runtime. Connectors never see it whole: each gets a
    :class:`~bridgekit.network_api.NetworkBridge` bound to its network, so the methods here
    that look something up take the network explicitly.

    The work is done by services it builds and holds (``logins``, ``notices``,
    ``transactions``, ``portals``, ...); the one-line methods that forward to them are kept
    where many call sites or the tests use the bridge's name for them."""

    def __init__(
        self,
        config: Config,
        connectors: Mapping[str, type[NetworkConnector]] | None = None,
    ) -> None:
        self.config = config
        self.domain = config.domain
        self.bridge_id = config.settings.appservice.id
        self.bot_mxid = config.bot_mxid
        available = connectors if connectors is not None else discover_connectors()
        self.connector_classes = available
        self.connectors: dict[str, NetworkConnector] = {}
        self.db: Database = create_database(
            config.settings.database.url,
            max_connections=config.settings.database.max_connections,
        )
        # SQLite: the homeserver's transactions get a file of their own (database/inbox.py).
        self.txn_url = inbox_url(config.settings.database.url)
        self.txn_db: Database | None = create_database(self.txn_url) if self.txn_url else None
        self.store = Store(self.db, self.txn_db)
        self.instance_lock = InstanceLock()  # one process per database: see instance_lock.py
        self.matrix = MatrixClient(
            str(config["homeserver.address"]),
            self.domain,
            self.bot_mxid,
            str(config["appservice.as_token"]),
            self.bridge_id,
        )
        self.metrics = Metrics()
        #: End-to-bridge encryption (bridgekit/crypto), when encryption.allow is on.
        self.encryption: Encryption | None = (
            build_encryption(self) if config.settings.encryption.allow else None
        )
        self.parking = Parking(self.store, self.metrics)
        self.inbox = OrderedExecutor("inbox", on_error=lambda k, e: self.metrics.error("inbox"))
        self.outbox = OrderedExecutor("outbox", on_error=lambda k, e: self.metrics.error("outbox"))
        # The portal and ghost objects (bridgekit/objects): the store builds them, one per row.
        self.meta_types = MetadataTypes(self.connectors)  # the connectors' metadata types
        self.portal_objects = Portals(self.store, self.outbox, self.meta_types)
        self.ghost_objects = Ghosts(self.store, self.meta_types)
        self.store.set_factories(portal=self.portal_objects.make, ghost=self.ghost_objects.make)
        self.server = AppServiceServer(
            self,
            str(config["appservice.hs_token"]),
            max_body_size=config.settings.appservice.max_body_size,
            on_ping=self._on_ping,
            metrics=self.metrics,
        )
        self.outbox_writer = OutboxWriter(
            self.store,
            self.metrics,
            self._network_of_event,
            lambda item, event: self._submit_outbox(item, event),  # late: tests patch it
            self._spawn,
        )
        self.stream_hold = remote_queue.StreamHold(config.settings.bridge.merge_hold)
        self.presence = PresenceKeeper(
            config.settings.bridge.presence_refresh, self._refresh_presence
        )
        self._background: set[asyncio.Task[Any]] = set()
        self.logins = LoginService(
            self.store,
            self.connectors,
            config.settings.bridge,
            self.presence,
            self._spawn,
            notify_user=lambda mxid, text: self.notices.notify_user(mxid, text),
            catch_up=lambda login_id: self.backfill.catch_up(login_id),
        )
        self.clients = self.logins.clients  # the same maps (tests and services read them)
        self.login_states = self.logins.states
        self.clients_of = self.logins.clients_of  # asked for every Matrix message: no hop
        self.notices = Notices(
            self.store,
            self.matrix,
            self.clients,
            lambda network, key, login_id: self.portals.rooms.get_or_create(network, key, login_id),
        )
        self.media = MediaSigner(str(config["appservice.as_token"]))
        # Signed media links: on the appservice listener, or on their own (media.port) so
        # that exposing media to the internet does not expose the appservice API.
        self.media_server = MediaServer(config.settings, self.media, self.matrix, self.server.app)
        max_media = config.settings.media.max_size
        add_link_route(self.media_server.app, self.media, self.matrix, max_media)
        self.fetcher = MediaFetcher.from_config(config.settings.media)
        self.started = False
        self.portals = PortalService(
            config=config,
            store=self.store,
            matrix=self.matrix,
            fetcher=self.fetcher,
            metrics=self.metrics,
            presence=self.presence,
            status=StatusReporter(self.matrix, config.settings.bridge, self.send_notice),
            connectors=self.connectors,
            clients=self.clients,
            clients_of=self.clients_of,
            add_login=self.add_login,
            ghost_mxid=self.ghost_mxid,
            connector_for_ghost=self.connector_for_ghost,
            media_url=self.media_url,
            spawn=self._spawn,
        )
        self.backfill = Backfill(
            config=config,
            store=self.store,
            clients=self.clients,
            queue_remote_event=self.queue_remote_event,
            # Late-bound: the live path and backfill each call the other.
            send_message=lambda p, login_id, m, txn: self.portals.remote_to_matrix.remote_message(
                p, login_id, m, txn
            ),
        )
        self.spaces = Spaces(
            store=self.store,
            matrix=self.matrix,
            puppets=self.portals.puppets,
            connectors=self.connectors,
            spawn=self._spawn,
            personal=config.settings.bridge.personal_spaces,
        )
        self.upgrades = RoomUpgrades(
            store=self.store,
            matrix=self.matrix,
            rooms=self.portals.rooms,
            spaces=self.spaces,
            send_notice=self.send_notice,
        )
        self.alias_rooms = AliasRooms(
            settings=config.settings.bridge.alias_rooms,
            store=self.store,
            matrix=self.matrix,
            connectors=self.connectors,
            rooms=self.portals.rooms,
            spaces=self.spaces,
            connector_for_ghost=self.connector_for_ghost,
        )
        self.commands = CommandProcessor(
            CommandRuntime(
                settings=config.settings.bridge,
                store=self.store,
                matrix=self.matrix,
                send_notice=self.send_notice,
                connectors=self.connectors,
                logins=self.logins,
                rooms=self.portals.rooms,
                spaces=self.spaces,
                connector_for_ghost=self.connector_for_ghost,
            )
        )
        self.router = MatrixRouter(
            permission_for=config.permission_for,
            store=self.store,
            matrix=self.matrix,
            commands=self.commands,
            matrix_to_remote=self.portals.matrix_to_remote,
            upgrades=self.upgrades,
            logins=self.logins,
            connector_for_ghost=self.connector_for_ghost,
            send_notice=self.send_notice,
            metrics=self.metrics,
            crypto=self.encryption,
        )
        self.portals.attach(
            spaces=self.spaces,
            backfill=self.backfill,
            level_of=self.router.level_of,
            ensure_user=self.commands.get_or_create_user,
        )
        self.remote_queue = remote_queue.RemoteQueue(
            store=self.store,
            parking=self.parking,
            metrics=self.metrics,
            portals=self.portal_objects,
            connectors=self.connectors,
            stream_hold=self.stream_hold,
            handler=self.portals.remote_to_matrix,
            send_notice=self.send_notice,
        )
        self.transactions = Transactions(
            self.store,
            self.router,
            self.inbox,
            self.metrics,
            self.parking,
            self._spawn,
            self.notices.send_notice,
            self.encryption,
        )
        self.network_services = NetworkServices(
            domain=self.domain,
            store=self.store,
            matrix=self.matrix,
            logins=self.logins,
            notices=self.notices,
            outbox=self.outbox_writer,
            connectors=self.connectors,
            meta_types=self.meta_types,
            portals=self.portal_objects,
            ghosts=self.ghost_objects,
            media_url=self.media_url,
            secret_key=self.secret_key,
            open_room=lambda network, key, login_id, *, alias_localpart: (
                self.portals.rooms.get_or_create(
                    network, key, login_id, alias_localpart=alias_localpart
                )
            ),
            get_or_create_user=lambda mxid: self.commands.get_or_create_user(mxid),
            upload_avatar=lambda data, mime: self.portals.puppets.upload_avatar(data, mime),
            fetcher=self.fetcher,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await open_database(self.db, str(self.config["database.url"]), self.instance_lock)
        await migrate(self.db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        if self.txn_db is not None and self.txn_url is not None:
            await open_inbox(self.txn_db, self.txn_url, self.db)
        self.store.attach_loop_connection()
        await self.store.load()
        for name, section in self.config.enabled_networks().items():
            cls = self.connector_classes.get(name)
            if cls is None:
                raise RuntimeError(f"networks.{name}: no installed connector has this name")
            pkg = cls.__module__.rsplit(".", 1)[0]
            migrations = package_migrations(pkg + ".migrations")
            if migrations:
                await migrate(self.db, name, migrations)
            connector = cls(NetworkBridge(self.network_services, name), section)
            self.connectors[name] = connector
            for cmd in connector.commands():
                cmd.network = name  # its handler gets this connector's BridgeAPI
                self.commands.register(cmd)
        await self.matrix.start()
        if self.encryption is not None:
            await start_encryption(self, self.encryption)  # before any transaction
            await self.router.load_bot_rooms()  # where encrypted events are decrypted
            self.encryption.waiting.serves = self.router.serves
        for connector in self.connectors.values():
            await connector.start()
        for login in await self.store.logins():
            if login.network in self.connectors:
                await self.logins.load(login)
        # Replay what was stored but not finished before the last stop, ahead of anything new
        # (each replay counted: what keeps failing is parked, see outbox/parking.py).
        await self.parking.load()
        await self.remote_queue.resume()
        await self.transactions.replay_pending()
        await self.server.start(
            str(self.config["appservice.hostname"]), int(self.config["appservice.port"])
        )
        await self.media_server.start()
        if self.encryption is not None:
            self.encryption.serve(self.transactions.run_crypto)  # /sync, the push check
        self._spawn(self._init_bot())
        self._spawn(self.alias_rooms.run())
        self._spawn(self.spaces.resume())
        self._spawn(self.transactions.prune())
        self.started = True
        self._untune = process_tuning.tune_for_serving()
        log.info("bridgekit %s started as %s", __version__, self.bot_mxid)

    async def stop(self) -> None:
        self.started = False
        if (untune := getattr(self, "_untune", None)) is not None:
            untune()  # a test process starts many bridges
        await self.server.stop()
        await self.media_server.stop()
        await self.logins.disconnect_all()
        for connector in self.connectors.values():
            try:
                await connector.stop()
            except Exception:
                log.exception("Error stopping connector %s", connector.name)
        await self.outbox_writer.drain()
        await self.inbox.stop()
        await self.outbox.stop()
        await self.presence.stop()
        await self.store.flush()
        await self.transactions.flush_finished()
        if self.encryption is not None:
            await self.encryption.stop()  # its /sync loop, before the session closes
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.matrix.stop()
        await self.fetcher.close()
        await self.store.detach_loop_connection()
        await self.instance_lock.release()
        await self.db.stop()
        if self.txn_db is not None:
            await self.txn_db.stop()

    async def _refresh_presence(self, mxid: str, presence: str, status: str | None) -> None:
        intent = self.matrix.intent(mxid)
        await intent.set_presence(PresenceState(presence), status, ignore_cache=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _init_bot(self) -> None:
        await set_up_bot(
            self.matrix,
            self.config.settings.appservice.bot,
            self.bridge_id,
            str(self.config["appservice.address"]),
        )

    async def _on_ping(self, txn_id: str | None) -> None:
        log.debug("Ping from homeserver (%s)", txn_id)

    # -- queries -----------------------------------------------------------------------------

    def connector_for_ghost(self, mxid: str) -> tuple[NetworkConnector, str] | None:
        """The connector and remote user id behind a ghost MXID, if it is one."""
        return connector_for_ghost(self.connectors, self.domain, mxid)

    async def query_user(self, user_id: str) -> bool:
        found = self.connector_for_ghost(user_id)
        if found is None:
            return False
        await self.matrix.intent(user_id).ensure_registered()
        return True

    async def query_alias(self, alias: str) -> bool:
        return await self.alias_rooms.query(alias)

    async def thirdparty(
        self, kind: str, protocol: str | None, query: dict[str, str]
    ) -> list[dict[str, Any]] | dict[str, Any] | None:
        return await thirdparty_lookup(self.connectors, kind, protocol, query)

    # -- what the connectors' BridgeAPI views forward to ---------------------------------------

    async def queue_remote_event(self, login_id: str | None, event: RemoteEvent) -> None:
        await self.outbox_writer.queue(login_id, event)

    def queue_remote_event_soon(self, login_id: str | None, event: RemoteEvent) -> None:
        self.outbox_writer.queue_soon(login_id, event)

    def _network_of_event(self, login_id: str | None, event: RemoteEvent) -> str:
        """The event's network: set by the connector's view (or the login's, for the
        runtime's own events). Never guessed: with several networks a guess is wrong."""
        client = self.clients.get(login_id) if login_id else None
        if client is not None:
            if event.network and event.network != client.login.network:
                raise ValueError(f"a {event.network} event for {client.login.network} login")
            return client.login.network
        if event.network:
            return event.network
        raise ValueError("a remote event needs its network or the id of a loaded login")

    def _submit_outbox(self, item: OutboxItem, event: RemoteEvent | None = None) -> None:
        self.remote_queue.submit(item, event)

    async def get_kv(self, key: str) -> str | None:
        return await self.store.get_kv(key)

    async def set_kv(self, key: str, value: str | None) -> None:
        await self.store.set_kv(key, value)

    def ghost_mxid(self, remote_user_id: str, network: str) -> str:
        """The ghost of ``remote_user_id`` on ``network`` (a remote id means nothing alone)."""
        localpart = self.connectors[network].ghost_localpart(RemoteUserID(remote_user_id))
        return f"@{localpart}:{self.domain}"

    def secret_key(self, purpose: str) -> bytes:
        token = str(self.config["appservice.as_token"]).encode()
        return hmac.new(token, b"bridgekit-secret:" + purpose.encode(), hashlib.sha256).digest()

    async def media_url(self, mxc: str, filename: str = "") -> str:
        """A signed link to our media proxy (Matrix 1.11 downloads need a token)."""
        file = ENCRYPTED_FILES.get(mxc)  # an encrypted attachment: the link decrypts it
        return self.media.url(media_public_base(self.config), mxc, filename, file)

    # -- helpers -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "bridge": self.bridge_id,
            "version": __version__,
            "started": self.started,
            "queues": {"inbox": self.inbox.pending, "outbox": self.outbox.pending},
            "parked": {kind: sorted(items) for kind, items in self.parking.parked.items()},
            "logins": self.logins.status(),
        }

    # -- forwarders: names that many call sites and the tests use (see the class docstring) --

    def report_state(
        self,
        login_id: str,
        state: BridgeStateEvent,
        message: str = "",
        error: str = "",
        *,
        notify: bool = True,
    ) -> None:
        self.logins.report_state(login_id, state, message, error, notify=notify)

    async def add_login(self, login: LoginInfo) -> NetworkClient:
        return await self.logins.add_login(login)

    async def remove_login(self, login_id: str) -> None:
        await self.logins.remove_login(login_id)

    def new_login_id(self) -> str:
        return self.logins.new_login_id()

    async def send_notice(self, room_id: str, text: str, html: str | None = None) -> None:
        await self.notices.send_notice(room_id, text, html)

    async def notify_user(self, user_mxid: str, text: str) -> bool:
        return await self.notices.notify_user(user_mxid, text)

    async def invite_to_portal(
        self, login_id: str, portal: PortalKey, reason: str = ""
    ) -> str | None:
        return await self.notices.invite_to_portal(login_id, portal, reason)

    # The appservice server's TransactionSink (matrix/appservice.py) is the bridge: these
    # four reach the transaction service (tests replace some of them on the bridge).

    async def store_transaction(self, txn: TxnKey, body: str | None) -> bool:
        return await self.transactions.store_transaction(txn, body)

    def dispatch_transaction(self, txn: TxnKey, data: dict[str, Any], replay: bool = False) -> None:
        self.transactions.dispatch_transaction(txn, data, replay)

    def needs_replay(self, data: dict[str, Any]) -> bool:
        return self.transactions.needs_replay(data)

    async def wait_for_capacity(self) -> None:
        await self.transactions.wait_for_capacity()
