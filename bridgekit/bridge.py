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
import gc
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from mautrix.types import PresenceState
from mautrix.util.async_db import Database

from . import __version__
from .commands.processor import CommandProcessor
from .commands.runtime import CommandRuntime
from .config import Config
from .contract.connector import (
    BridgeStateEvent,
    LoginInfo,
    NetworkClient,
    NetworkConnector,
    ThirdPartyHandler,
)
from .contract.events import PortalKey, RemoteEvent, RemoteUserID
from .contract.ids import localpart_of, server_of
from .database.db import create_database, migrate, open_database, package_migrations
from .database.inbox import inbox_url, open_inbox
from .database.store import OutboxItem, Store
from .instance_lock import InstanceLock
from .logins import LoginService
from .matrix.appservice import AppServiceServer, TxnKey
from .matrix.client import MatrixClient, with_retries
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
from .outbox.transactions import Transactions, parking_key
from .outbox.writer import OutboxWriter
from .portal.alias_rooms import AliasRooms
from .portal.backfill import Backfill
from .portal.portals import PortalService
from .portal.presence import PresenceKeeper
from .portal.spaces import Spaces
from .portal.upgrades import RoomUpgrades

log = logging.getLogger("bridgekit")
#: Net allocations of tracked objects between two young-generation passes of the collector
#: while the bridge runs (see Bridge.start).
GC_YOUNG_THRESHOLD = 20_000
#: Tries to commit a batch of remote events before they are given up (logged, and the
#: connector's await raises): 0.1-3.2 s apart, 3-6 s in all.


class InstalledConnectors(Mapping[str, type[NetworkConnector]]):
    """Connector classes from the ``bridgekit.connectors`` entry point group, each imported
    the first time it is asked for: a bridge runs only the networks its config enables, and
    importing the others' libraries cost memory for nothing (slixmpp: 6.5 MiB of RSS in an
    IRC-only bridge). A connector that fails to import counts as not installed."""

    def __init__(self) -> None:
        self._points = {ep.name: ep for ep in entry_points(group="bridgekit.connectors")}
        self._loaded: dict[str, type[NetworkConnector] | None] = {}

    def __getitem__(self, name: str) -> type[NetworkConnector]:
        if name not in self._loaded:
            ep = self._points[name]  # KeyError: not installed
            try:
                self._loaded[name] = ep.load()
            except Exception as e:  # a broken third-party package must not stop the bridge
                log.warning("Could not load connector %s: %s", name, e)
                self._loaded[name] = None
        cls = self._loaded[name]
        if cls is None:
            raise KeyError(name)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)


def discover_connectors() -> InstalledConnectors:
    """The installed connectors, by name (imported on first use)."""
    return InstalledConnectors()


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
        )
        self.portals.attach(
            spaces=self.spaces,
            backfill=self.backfill,
            level_of=self.router.level_of,
            ensure_user=self.commands.get_or_create_user,
        )
        self.transactions = Transactions(
            self.store,
            self.router,
            self.inbox,
            self.metrics,
            self.parking,
            self._spawn,
            self.notices.send_notice,
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
        for connector in self.connectors.values():
            await connector.start()
        for login in await self.store.logins():
            if login.network in self.connectors:
                await self.logins.load(login)
        # Replay what was stored but not finished before the last stop, ahead of anything new
        # (each replay counted: what keeps failing is parked, see outbox/parking.py).
        await self.parking.load()
        outbox = await self.store.outbox_pending()
        await self.parking.keep_only("outbox", (str(i.seq) for i in outbox))
        for item in outbox:
            if not self.parking.is_parked("outbox", str(item.seq)):
                self._submit_outbox(item)
        await self.store.settle_transactions()  # what the last run finished leaves the inbox
        pending = await self.store.pending_transactions()
        await self.parking.keep_only("transaction", (parking_key(t) for t, _ in pending))
        replays: list[tuple[TxnKey, dict[str, Any]]] = []
        for txn, body in pending:
            if self.parking.is_parked("transaction", parking_key(txn)):
                continue
            try:
                replays.append((txn, json.loads(body)))
            except (ValueError, RecursionError):
                await self.store.finish_transactions([txn])
        # Counted together (one commit), then dispatched in one go, in order.
        allowed = await self.parking.replay_many(
            "transaction", [parking_key(t) for t, _ in replays]
        )
        for (txn, data), go in zip(replays, allowed, strict=True):
            if not go:
                self._spawn(self.transactions.tell_parked(txn, data))
                continue
            log.info("Replaying unfinished transaction %s", txn[0])
            self.dispatch_transaction(txn, data, replay=True)
        await self.server.start(
            str(self.config["appservice.hostname"]), int(self.config["appservice.port"])
        )
        await self.media_server.start()
        self._spawn(self._init_bot())
        self._spawn(self.alias_rooms.run())
        self._spawn(self.spaces.resume())
        self._spawn(self.transactions.prune())
        self.started = True
        # What start-up made (modules, config, caches) lives as long as the process: frozen,
        # it is left out of the collector's full passes, which otherwise walk it all (~50-100
        # ms each, every few thousand events under load). Unfrozen at stop.
        gc.freeze()
        # The young generation is collected every GC_YOUNG_THRESHOLD net allocations instead
        # of Python's 700: a transaction's parsed events (~25 objects each) then mostly die
        # before a pass, instead of being walked and promoted by several (bench/ingest_portals.py,
        # 85,000 events: 0.20-0.68 s in the collector before, 0.14 s). Restored at stop.
        self._gc_young = gc.get_threshold()[0]
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        log.info("bridgekit %s started as %s", __version__, self.bot_mxid)

    async def stop(self) -> None:
        self.started = False
        gc.unfreeze()  # collectable again (a test process starts many bridges)
        if (young := getattr(self, "_gc_young", None)) is not None:
            gc.set_threshold(young, *gc.get_threshold()[1:])
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
        bot = self.matrix.bot
        assert bot is not None
        try:
            await self.matrix.register_bot()
            name = self.config.settings.appservice.bot.displayname
            if name:
                await with_retries(lambda: bot.set_displayname(name), what="bot displayname")
            avatar = self.config.settings.appservice.bot.avatar
            if avatar:
                await with_retries(lambda: bot.set_avatar_url(avatar), what="bot avatar")
        except Exception:
            log.exception("Could not set up the bridge bot")
            return
        await self._ping_from_homeserver()

    async def _ping_from_homeserver(self, attempts: int = 5) -> None:
        """Ask the homeserver to ping us. A successful ping also makes Synapse retry at once
        the transactions it held back while it counted the bridge as down (otherwise they wait
        out its backoff, up to minutes after a restart). A failed one does not, so a failure to
        reach us (502/504: e.g. a pooled connection to the previous process) is retried."""
        bot = self.matrix.bot
        assert bot is not None
        for attempt in range(1, attempts + 1):
            try:
                duration = await bot.appservice_ping(self.bridge_id)
                log.info("Homeserver -> bridge ping OK in %d ms", duration)
                return
            except Exception as e:
                status = getattr(e, "http_status", None)
                if status not in (502, 504) or attempt == attempts:
                    log.warning(
                        "The homeserver could not reach the bridge at %s (appservice.address, "
                        "the registration's url; ping failed): %s",
                        self.config["appservice.address"],
                        e,
                    )
                    return
                log.info("Homeserver -> bridge ping failed (%s), retrying", e)
                await asyncio.sleep(0.5 * attempt)

    async def _on_ping(self, txn_id: str | None) -> None:
        log.debug("Ping from homeserver (%s)", txn_id)

    # -- queries -----------------------------------------------------------------------------

    def connector_for_ghost(self, mxid: str) -> tuple[NetworkConnector, str] | None:
        """The connector and remote user id behind a ghost MXID, if it is one."""
        if server_of(mxid) != self.domain:
            return None
        localpart = localpart_of(mxid)
        for connector in self.connectors.values():
            remote = connector.ghost_remote_id(localpart)
            if remote is not None:
                return connector, remote
        return None

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
        handlers = {n: c for n, c in self.connectors.items() if isinstance(c, ThirdPartyHandler)}
        if kind == "protocol":
            handler = handlers.get(protocol or "")
            return handler.protocol_info() if handler else None
        if protocol is None:
            return []  # reverse lookups by alias/userid: none of our connectors index them
        handler = handlers.get(protocol)
        if handler is None:
            return None
        if kind == "location":
            return await handler.lookup_location(query)
        return await handler.lookup_user(query)

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
        remote_queue.submit(self, item, event)

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
        return self.media.url(media_public_base(self.config), mxc, filename)

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
        self, login_id: str, state: BridgeStateEvent, message: str = "", error: str = ""
    ) -> None:
        self.logins.report_state(login_id, state, message, error)

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
