"""The runtime: wires the appservice server, store, Matrix client, connectors and queues.

Data flow (see the README picture):

* homeserver -> ``PUT /transactions`` -> body committed to ``appservice_txn`` -> 200 ->
  :class:`~bridgekit.ordering.OrderedExecutor` keyed by room -> :mod:`bridgekit.router`.
  A transaction's body is cleared once all its events are handled; after a crash the bodies
  still present are replayed (handlers skip events already bridged).
* connector -> :meth:`Bridge.queue_remote_event` -> row committed to ``outbox`` (group commit)
  -> executor keyed by portal -> :mod:`bridgekit.portals` -> Matrix, retried until it succeeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from mautrix.types import PresenceState
from mautrix.util.async_db import Database

from . import __version__, remote_queue
from .appservice import AppServiceServer
from .config import Config
from .connector import (
    AliasResolver,
    BridgeAPI,
    NetworkClient,
    NetworkConnector,
    ThirdPartyHandler,
)
from .db import create_database, migrate, open_database, package_migrations
from .events import (
    PortalKey,
    RemoteEvent,
    remote_event_to_json,
)
from .ids import localpart_of, server_of
from .instance_lock import InstanceLock
from .logins import Logins, LoginState
from .matrix import Backoff, MatrixClient, with_retries
from .media import MediaSigner
from .media import add_routes as add_media_routes
from .metrics import Metrics
from .notices import Notices
from .ordering import OrderedExecutor
from .parking import REPLAY_ATTEMPTS, Parking
from .presence import PresenceKeeper
from .store import LRU, OutboxItem, Store

log = logging.getLogger("bridgekit")
#: Tries to commit a batch of remote events before they are given up (logged, and the
#: connector's await raises): 0.1-3.2 s apart, 3-6 s in all.
OUTBOX_ATTEMPTS = 6

#: Above this many unhandled events in memory, new transactions wait before being acknowledged.
MAX_PENDING_EVENTS = 20_000


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


class Bridge(Logins, Notices, BridgeAPI):
    def __init__(
        self,
        config: Config,
        connectors: Mapping[str, type[NetworkConnector]] | None = None,
    ) -> None:
        self.config = config
        self.domain = config.domain
        self.bridge_id = str(config["appservice.id"])
        self.bot_mxid = config.bot_mxid
        available = connectors if connectors is not None else discover_connectors()
        self.connector_classes = available
        self.connectors: dict[str, NetworkConnector] = {}
        self.clients: dict[str, NetworkClient] = {}
        self._clients_by_user: dict[str, list[NetworkClient]] = {}
        self.login_states: dict[str, LoginState] = {}
        self._connected_by_network: dict[str, int] = {}
        self.db: Database = create_database(
            str(config["database.url"]),
            max_connections=int(config.get("database.max_connections", 10)),
        )
        # SQLite: the transaction table gets a connection of its own (see Store).
        url = str(config["database.url"])
        self.txn_db: Database | None = (
            create_database(url) if url.startswith(("sqlite:", "sqlite3:")) else None
        )
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
        self.server = AppServiceServer(
            self,
            str(config["appservice.hs_token"]),
            max_body_size=int(config.get("appservice.max_body_size", 10 * 1024 * 1024)),
            on_ping=self._on_ping,
            metrics=self.metrics,
        )
        self._txn_remaining: dict[str, int] = {}
        self._txn_without_body: set[str] = set()
        self._recent_idless_txns = LRU(10_000)
        self._txn_finished: list[str] = []
        self._txn_flush_task: asyncio.Task[None] | None = None
        self._outbox_pending: list[tuple[OutboxItem, RemoteEvent, asyncio.Future | None]] = []
        self._outbox_flush_task: asyncio.Task[None] | None = None
        self.stream_hold = remote_queue.StreamHold(float(config.get("bridge.merge_hold", 0.25)))
        self.presence = PresenceKeeper(
            float(config.get("bridge.presence_refresh", 25)), self._refresh_presence
        )
        self._background: set[asyncio.Task[Any]] = set()
        self.media = MediaSigner(str(config["appservice.as_token"]))
        add_media_routes(self.server.app, self)
        self.started = False
        # Imported here: these modules need the Bridge type only for annotations.
        from .commands import CommandProcessor
        from .portals import PortalService
        from .router import MatrixRouter

        self.portals = PortalService(self)
        self.router = MatrixRouter(self)
        self.commands = CommandProcessor(self)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await open_database(self.db, str(self.config["database.url"]), self.instance_lock)
        await migrate(self.db, "bridgekit", package_migrations("bridgekit.migrations"))
        if self.txn_db is not None:
            await self.txn_db.start()
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
            connector = cls(self, section)
            self.connectors[name] = connector
            for cmd in connector.commands():
                self.commands.register(cmd)
        await self.matrix.start()
        for connector in self.connectors.values():
            await connector.start()
        for login in await self.store.logins():
            if login.network in self.connectors:
                await self._load_client(login)
        # Replay what was stored but not finished before the last stop, ahead of anything new
        # (each replay counted: what keeps failing is parked, see parking.py).
        await self.parking.load()
        outbox = await self.store.outbox_pending()
        await self.parking.keep_only("outbox", (str(i.seq) for i in outbox))
        for item in outbox:
            if not self.parking.is_parked("outbox", str(item.seq)):
                self._submit_outbox(item)
        pending = await self.store.pending_transactions()
        await self.parking.keep_only("transaction", (t for t, _ in pending))
        replays: list[tuple[str, dict[str, Any]]] = []
        for txn_id, body in pending:
            if self.parking.is_parked("transaction", txn_id):
                continue
            try:
                replays.append((txn_id, json.loads(body)))
            except ValueError:
                await self.store.finish_transactions([txn_id])
        # Counted together (one commit), then dispatched in one go, in order.
        allowed = await self.parking.replay_many("transaction", [t for t, _ in replays])
        for (txn_id, data), go in zip(replays, allowed, strict=True):
            if not go:
                self._spawn(self._tell_parked_transaction(txn_id, data))
                continue
            log.info("Replaying unfinished transaction %s", txn_id)
            self.dispatch_transaction(txn_id, data, replay=True)
        await self.server.start(
            str(self.config["appservice.hostname"]), int(self.config["appservice.port"])
        )
        self._spawn(self._init_bot())
        self._spawn(self.store.prune_transactions(7 * 24 * 3600 * 1000))
        self.started = True
        log.info("bridgekit %s started as %s", __version__, self.bot_mxid)

    async def stop(self) -> None:
        self.started = False
        await self.server.stop()
        for client in list(self.clients.values()):
            try:
                await asyncio.wait_for(client.disconnect(), 10)
            except Exception:
                log.exception("Error disconnecting %s", client.login.id)
        for connector in self.connectors.values():
            try:
                await connector.stop()
            except Exception:
                log.exception("Error stopping connector %s", connector.name)
        await self._drain_outbox_pending()
        await self.inbox.stop()
        await self.outbox.stop()
        await self.presence.stop()
        await self.store.flush()
        await self._flush_finished_txns()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.matrix.stop()
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
            name = self.config.get("appservice.bot.displayname")
            if name:
                await with_retries(lambda: bot.set_displayname(name), what="bot displayname")
            avatar = self.config.get("appservice.bot.avatar")
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

    # -- transactions (TransactionSink) ------------------------------------------------------

    async def store_transaction(self, txn_id: str, body: str | None) -> bool:
        if body is None:
            # Nothing in it to handle (typically the echo of what the bridge itself just
            # sent): a retry would be ignored again, so the id is remembered in memory only
            # and acknowledging it costs no write.
            if txn_id in self._recent_idless_txns:
                return False
            self._recent_idless_txns.put(txn_id, True)
            self._txn_without_body.add(txn_id)
            return True
        stored = await self.store.store_transaction(txn_id, body)
        if not stored:
            self._txn_without_body.discard(txn_id)  # a retry: it will not be dispatched
        return stored

    def needs_replay(self, data: dict[str, Any]) -> bool:
        """Whether any event of a transaction needs handling (so its body must be stored)."""
        wants = self.router.wants
        return any(isinstance(e, dict) and wants(e) for e in data.get("events") or ())

    async def wait_for_capacity(self) -> None:
        while self.inbox.pending > MAX_PENDING_EVENTS:  # noqa: ASYNC110 - rare backpressure path
            await asyncio.sleep(0.05)

    def dispatch_transaction(self, txn_id: str, data: dict[str, Any], replay: bool = False) -> None:
        """Queue a stored transaction's events, one job per room, in order within each room.

        Events the bridge has no use for (ordinary messages in rooms that are neither portals
        nor management rooms) are recognised here from in-memory indexes and never queued.
        """
        events = data.get("events") or ()
        ephemeral = data.get("ephemeral") or data.get("de.sorunome.msc2409.ephemeral") or []
        self.metrics.events_in("matrix", len(events))
        wants = self.router.wants
        by_room: dict[str, list[dict[str, Any]]] = {}
        for evt in events:
            if isinstance(evt, dict) and wants(evt):
                by_room.setdefault(evt["room_id"], []).append(evt)
        if not by_room:
            if txn_id in self._txn_without_body:
                self._txn_without_body.discard(txn_id)  # nothing stored, nothing to clear
            else:
                self._txn_done(txn_id)
        else:
            self._txn_without_body.discard(txn_id)
            self._txn_remaining[txn_id] = len(by_room)
        for room, room_events in by_room.items():
            self.inbox.submit(
                room, lambda evts=room_events: self._handle_room_events(txn_id, evts, replay)
            )
        for evt in ephemeral:
            if isinstance(evt, dict):
                key = evt.get("room_id") if isinstance(evt.get("room_id"), str) else ""
                self.inbox.submit(key, lambda evt=evt: self.router.handle_ephemeral(evt))

    async def _handle_room_events(
        self, txn_id: str, events: list[dict[str, Any]], replay: bool
    ) -> None:
        try:
            for evt in events:
                start = time.perf_counter()
                try:
                    await self.router.handle_event(evt, replay)
                except Exception:
                    self.metrics.error("matrix_event")
                    log.exception("Failed to handle event %s", evt.get("event_id"))
                self.metrics.handled("matrix", time.perf_counter() - start)
        except asyncio.CancelledError:
            if replay:  # a stop cut it short: not a failure
                self.parking.interrupted("transaction", txn_id)
            raise
        finally:
            remaining = self._txn_remaining.get(txn_id, 1) - 1
            if remaining <= 0:
                self._txn_done(txn_id)
            else:
                self._txn_remaining[txn_id] = remaining

    def _txn_done(self, txn_id: str) -> None:
        self._txn_remaining.pop(txn_id, None)
        self._txn_finished.append(txn_id)
        if self._txn_flush_task is None or self._txn_flush_task.done():
            self._txn_flush_task = self._spawn(self._flush_finished_txns())

    async def _flush_finished_txns(self) -> None:
        while self._txn_finished:
            batch, self._txn_finished = self._txn_finished, []
            try:
                # What handling these events recorded commits before (or with) the mark
                # that ends their transaction's replay: one group commit for both.
                await self.store.finish_transactions(batch)
            except Exception:
                log.exception("Could not mark transactions finished (they will be replayed)")
                return

    async def _tell_parked_transaction(self, txn_id: str, data: dict[str, Any]) -> None:
        """The portal rooms of a parked transaction's events learn that some were not
        bridged (their senders would otherwise never know)."""
        rooms = {
            e["room_id"]
            for e in data.get("events") or ()
            if isinstance(e, dict) and isinstance(e.get("room_id"), str)
        }
        for room_id in sorted(rooms):
            if self.store.is_portal_room(room_id):
                await self.send_notice(
                    room_id,
                    f"Some messages sent here could not be bridged: their transaction "
                    f"({txn_id}) failed {REPLAY_ATTEMPTS} replays and was set aside.",
                )

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
        if server_of(alias) != self.domain:
            return False
        localpart = alias[1:].split(":", 1)[0]
        for connector in self.connectors.values():
            if not isinstance(connector, AliasResolver):
                continue
            resolved = await connector.resolve_alias(localpart)
            if resolved is None:
                continue
            key, login_id = resolved
            existing = await self.store.get_portal(connector.name, key)
            if existing is not None and existing.mxid:
                # A room made before anyone asked for its alias (by a command, an invite):
                # the homeserver asks us because the alias is not there yet, so add it.
                return await self.portals.add_alias(existing, localpart)
            portal = await self.portals.get_or_create(
                connector.name, key, login_id, alias_localpart=localpart, by_alias=True
            )
            return portal is not None and portal.mxid is not None
        return False

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

    # -- BridgeAPI for connectors --------------------------------------------------------------

    async def queue_remote_event(self, login_id: str | None, event: RemoteEvent) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._append_outbox(login_id, event, fut)
        await fut

    def queue_remote_event_soon(self, login_id: str | None, event: RemoteEvent) -> None:
        """No task and no future per event: the group commit submits it (see BridgeAPI)."""
        try:
            self._append_outbox(login_id, event, None)
        except Exception:
            log.exception("Could not queue a remote event (%s)", event.kind)

    def _append_outbox(
        self, login_id: str | None, event: RemoteEvent, fut: asyncio.Future[None] | None
    ) -> None:
        network = self._network_of_event(login_id, event)
        payload = remote_event_to_json(event)
        self._outbox_pending.append(
            (OutboxItem(0, network, event.portal, login_id, payload), event, fut)
        )
        if self._outbox_flush_task is None or self._outbox_flush_task.done():
            self._outbox_flush_task = self._spawn(self._flush_outbox())

    def _network_of_event(self, login_id: str | None, event: RemoteEvent) -> str:
        if login_id and login_id in self.clients:
            return self.clients[login_id].login.network
        network = getattr(event, "network", None)
        if network:
            return network
        if len(self.connectors) == 1:
            return next(iter(self.connectors))
        raise ValueError("queue_remote_event needs a login id when several networks run")

    async def _flush_outbox(self) -> None:
        """Group commit: every event queued while the previous write ran goes in one txn,
        then each is submitted to its portal's queue, in the order they were queued."""
        while self._outbox_pending:
            batch, self._outbox_pending = self._outbox_pending, []
            rows = [(i.network, i.portal, i.login_id, i.payload) for i, _, _ in batch]
            backoff = Backoff(base=0.2, cap=5.0)
            for attempt in range(1, OUTBOX_ATTEMPTS + 1):
                try:
                    seqs = await self.store.outbox_add_many(rows)
                    break
                except Exception as e:  # a locked or full database: the batch is retried
                    if attempt == OUTBOX_ATTEMPTS:
                        log.error("Could not store %d remote events: %s", len(batch), e)
                        for _, _, fut in batch:
                            if fut is not None and not fut.done():
                                fut.set_exception(e)
                        seqs = None
                        break
                    delay = backoff.next_delay()
                    log.warning(
                        "Storing %d remote events failed (%s), retry %d in %.1fs",
                        len(batch),
                        e,
                        attempt,
                        delay,
                    )
                    await asyncio.sleep(delay)
            if seqs is None:
                continue
            self.metrics.events_in("remote", len(batch))
            for (item, event, fut), seq in zip(batch, seqs, strict=True):
                item.seq = seq
                self._submit_outbox(item, event)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    async def _drain_outbox_pending(self) -> None:
        """Wait until every queued remote event is committed (before stopping)."""
        while self._outbox_flush_task is not None and not self._outbox_flush_task.done():
            await asyncio.gather(self._outbox_flush_task, return_exceptions=True)

    def _submit_outbox(self, item: OutboxItem, event: RemoteEvent | None = None) -> None:
        remote_queue.submit(self, item, event)

    async def get_kv(self, key: str) -> str | None:
        return await self.store.get_kv(key)

    async def set_kv(self, key: str, value: str | None) -> None:
        await self.store.set_kv(key, value)

    async def find_message(self, portal: PortalKey, remote_id: str) -> str | None:
        for network in self.connectors:
            row = await self.store.message_by_remote(network, portal, remote_id)
            if row:
                return row.event_id
        return None

    async def find_remote_id(self, event_id: str) -> str | None:
        row = await self.store.message_by_event(event_id)
        return row.remote_id if row else None

    def ghost_mxid(self, remote_user_id: str, network: str | None = None) -> str:
        if network is None:
            network = next(iter(self.connectors)) if len(self.connectors) == 1 else ""
        return f"@{self.connectors[network].ghost_localpart(remote_user_id)}:{self.domain}"

    async def upload_media(self, data: bytes, mime_type: str, filename: str = "") -> str:
        bot = self.matrix.bot
        assert bot is not None
        return str(
            await with_retries(
                lambda: bot.upload_media(data, mime_type=mime_type, filename=filename or None),
                what="uploading media",
                max_attempts=5,
            )
        )

    def secret_key(self, purpose: str) -> bytes:
        token = str(self.config["appservice.as_token"]).encode()
        return hmac.new(token, b"bridgekit-secret:" + purpose.encode(), hashlib.sha256).digest()

    async def matrix_displayname(self, mxid: str) -> str | None:
        bot = self.matrix.bot
        assert bot is not None
        try:
            name = await bot.get_displayname(mxid)
        except Exception:
            return None
        return str(name) if name else None

    async def media_url(self, mxc: str, filename: str = "") -> str:
        """A signed link to our media proxy (Matrix 1.11 downloads need a token)."""
        base = str(
            self.config.get("appservice.public_address") or self.config["appservice.address"]
        )
        return self.media.url(base, mxc, filename)

    # -- helpers -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "bridge": self.bridge_id,
            "version": __version__,
            "started": self.started,
            "queues": {"inbox": self.inbox.pending, "outbox": self.outbox.pending},
            "parked": {kind: sorted(items) for kind, items in self.parking.parked.items()},
            "logins": {
                lid: {
                    "network": c.login.network,
                    "user": c.login.user_mxid,
                    "remote_id": c.login.remote_id,
                    "remote_name": c.login.remote_name,
                    "state": self.login_states.get(lid, LoginState()).state.value,
                    "message": self.login_states.get(lid, LoginState()).message,
                }
                for lid, c in self.clients.items()
            },
        }
