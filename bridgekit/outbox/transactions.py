"""Transactions from the homeserver: remembered, queued per room, marked done, forgotten.

:class:`bridgekit.matrix.appservice.AppServiceServer` hands transactions to the runtime (its
``TransactionSink``), which hands them to :class:`Transactions`. A transaction is known by its
id and a digest of its event ids (:func:`bridgekit.matrix.appservice.events_digest`): the id
alone is unique only within one run of the homeserver.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from ..database.records import LRU
from ..database.store import Store
from ..matrix.appservice import TxnKey
from ..metrics import Metrics
from .ordering import OrderedExecutor
from .parking import REPLAY_ATTEMPTS, Parking

log = logging.getLogger("bridgekit")

#: Above this many unhandled events in memory, new transactions wait before being acknowledged.
MAX_PENDING_EVENTS = 20_000
#: How long a handled transaction's key is kept to recognise a retry (milliseconds).
TXN_KEEP_MS = 7 * 24 * 3600 * 1000
#: Seconds between two settles of the finished transactions' marks (their bodies stay on disk
#: until then; a restart settles them too).
SETTLE_INTERVAL = 10.0
#: Seconds between two warnings that the homeserver reuses transaction ids.
TXN_REUSE_LOG_INTERVAL = 600.0


def parking_key(txn: TxnKey) -> str:
    """A transaction's name in :mod:`bridgekit.outbox.parking` (its id alone is not unique)."""
    return f"{txn[0]}/{txn[1]}"


def _short(value: Any) -> str:
    """A field of an untrusted event, for a log line: a string cut short, else its type (the
    repr of junk can be huge, or nested too deep to build)."""
    return value[:100] if isinstance(value, str) else f"<{type(value).__name__}>"


class EventRouter(Protocol):
    """Where a transaction's events go (:class:`bridgekit.matrix.router.MatrixRouter`)."""

    def wants(self, evt: dict[str, Any]) -> bool: ...

    async def handle_event(self, evt: dict[str, Any], replay: bool = False) -> None: ...

    async def handle_ephemeral(self, evt: dict[str, Any]) -> None: ...


class TransactionCrypto(Protocol):
    """End-to-bridge encryption as transactions see it (bridgekit/crypto/service.py)."""

    def wants(self, data: dict[str, Any]) -> bool: ...

    def has_extras(self, data: dict[str, Any]) -> bool: ...

    async def handle_extras(self, data: dict[str, Any]) -> None: ...

    async def decrypt(self, evt: dict[str, Any]) -> dict[str, Any] | None: ...


#: The inbox lane of to-device messages, key counts and device lists (one, in order).
CRYPTO_LANE = "\0crypto"
ENCRYPTED = "m.room.encrypted"


class Transactions:
    """The homeserver's transactions, from their storing to their end (see the module
    docstring). Events are queued on ``inbox`` (one lane per room) and handled by ``router``."""

    def __init__(
        self,
        store: Store,
        router: EventRouter,
        inbox: OrderedExecutor,
        metrics: Metrics,
        parking: Parking,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        send_notice: Callable[[str, str], Awaitable[Any]],
        crypto: TransactionCrypto | None = None,
    ) -> None:
        self.store = store
        self.crypto = crypto
        #: Set once the last queued crypto job ended: room events wait for it to decrypt.
        self._crypto_done = asyncio.Event()
        self._crypto_done.set()
        self.router = router
        self.inbox = inbox
        self.metrics = metrics
        self.parking = parking
        self._spawn = spawn
        self.send_notice = send_notice
        self._txn_remaining: dict[TxnKey, int] = {}
        self._txn_without_body: set[TxnKey] = set()
        self._recent_idless_txns = LRU(10_000)  # txnId -> digest, of transactions not stored
        self._txn_reused_logged_at = float("-inf")
        self._txn_reused_since_log = 0
        self._txn_finished: list[TxnKey] = []
        self._event_failure_sites = LRU(1000)  # where events failed (one traceback each)
        self._txn_flush_task: asyncio.Task[None] | None = None

    async def prune(self) -> None:
        """Forget handled transactions after a week, at start and then daily (a long run
        would otherwise keep every one; a homeserver retries within minutes to hours); and
        every :data:`SETTLE_INTERVAL` seconds apply the "finished" marks to the stored
        transactions, freeing their bodies (database/transactions.py)."""
        next_prune = 0.0
        while True:
            now = time.monotonic()
            try:
                if now >= next_prune:
                    next_prune = now + 24 * 3600
                    await self.store.prune_transactions(TXN_KEEP_MS)
                else:
                    await self.store.settle_transactions()
            except Exception as e:
                log.warning("Could not prune or settle old transactions: %s", e)
            await asyncio.sleep(SETTLE_INTERVAL)

    async def store_transaction(self, txn: TxnKey, body: str | None) -> bool:
        txn_id, digest = txn
        if body is None:
            # Nothing in it to handle (typically the echo of what the bridge itself just
            # sent): a retry would be ignored again, so it is remembered in memory only and
            # acknowledging it costs no write. Without timeline events it is never a retry
            # (a homeserver resends only those): its ephemeral events, if any, are new.
            if digest:
                known = self._recent_idless_txns.get(txn_id)
                if known == digest:
                    return False
                if known is not None:
                    self._txn_id_reused(txn_id)
                self._recent_idless_txns.put(txn_id, digest)
            self._txn_without_body.add(txn)
            return True
        stored = await self.store.store_transaction(txn, body)
        if stored == "retry":
            self._txn_without_body.discard(txn)  # it will not be dispatched
            return False
        if stored == "reused":
            self._txn_id_reused(txn_id)
        return True

    def _txn_id_reused(self, txn_id: str) -> None:
        """Say, once per burst, that the homeserver reuses transaction ids for new events."""
        self._txn_reused_since_log += 1
        now = time.monotonic()
        if now - self._txn_reused_logged_at < TXN_REUSE_LOG_INTERVAL:
            log.debug("Transaction id %s reused with new events: processing them", txn_id)
            return
        log.warning(
            "The homeserver reused transaction id %s for new events (%d time(s) since the "
            "last warning): it numbers transactions again after a restart (Synapse on SQLite "
            "does). They are processed, not taken for retries.",
            txn_id,
            self._txn_reused_since_log,
        )
        self._txn_reused_logged_at = now
        self._txn_reused_since_log = 0

    def needs_replay(self, data: dict[str, Any]) -> bool:
        """Whether any event of a transaction needs handling (so its body must be stored)."""
        wants = self.router.wants
        if self.crypto is not None and self.crypto.wants(data):
            return True  # room keys and device lists: lost if acknowledged unstored
        return any(isinstance(e, dict) and wants(e) for e in data.get("events") or ())

    async def wait_for_capacity(self) -> None:
        while self.inbox.pending > MAX_PENDING_EVENTS:  # noqa: ASYNC110 - rare backpressure path
            await asyncio.sleep(0.05)

    def dispatch_transaction(self, txn: TxnKey, data: dict[str, Any], replay: bool = False) -> None:
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
        crypto = self.crypto
        extras = crypto is not None and crypto.has_extras(data)
        # The crypto part counts toward the transaction's end only if the body was stored
        # (key counts alone are not: the next transaction brings fresh ones).
        counted = extras and txn not in self._txn_without_body
        if not by_room and not counted:
            if txn in self._txn_without_body:
                self._txn_without_body.discard(txn)  # nothing stored, nothing to clear
            else:
                self._txn_done(txn)
        else:
            self._txn_without_body.discard(txn)
            self._txn_remaining[txn] = len(by_room) + counted
        crypto_done = self._crypto_done
        if extras:
            # Handled on one lane, in transaction order, before this transaction's room events
            # are decrypted (they may need the room keys these to-device messages carry).
            crypto_done = self._crypto_done = asyncio.Event()
            self.inbox.submit(
                CRYPTO_LANE,
                lambda: self._handle_crypto(txn, data, crypto_done, replay, counted),
            )
        for room, room_events in by_room.items():
            self.inbox.submit(
                room,
                lambda evts=room_events: self._handle_room_events(txn, evts, replay, crypto_done),
            )
        for evt in ephemeral:
            if isinstance(evt, dict):
                key = evt.get("room_id") if isinstance(evt.get("room_id"), str) else ""
                self.inbox.submit(key, lambda evt=evt: self.router.handle_ephemeral(evt))

    async def run_crypto(self, data: dict[str, Any]) -> None:
        """Handle transaction-shaped crypto fields from elsewhere (/sync as the bot's device)
        on the crypto lane, in order with the transactions'; returns once handled."""
        assert self.crypto is not None
        crypto = self.crypto
        result: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done = self._crypto_done = asyncio.Event()

        async def job() -> None:
            try:
                await crypto.handle_extras(data)
                result.set_result(None)
            except Exception as e:
                result.set_exception(e)
            finally:
                done.set()

        self.inbox.submit(CRYPTO_LANE, job)
        await result

    async def _handle_crypto(
        self, txn: TxnKey, data: dict[str, Any], done: asyncio.Event, replay: bool, counted: bool
    ) -> None:
        assert self.crypto is not None
        try:
            await self.crypto.handle_extras(data)
        except asyncio.CancelledError:
            if replay:
                self.parking.interrupted("transaction", parking_key(txn))
            raise
        except Exception:
            # Left unfinished (replayed at the next start): its room keys must not be lost.
            self.metrics.error("crypto")
            log.exception("Could not handle the to-device part of transaction %s", txn[0])
            counted = False
        finally:
            done.set()
        if counted:
            self._one_part_done(txn)

    async def _handle_room_events(
        self,
        txn: TxnKey,
        events: list[dict[str, Any]],
        replay: bool,
        crypto_done: asyncio.Event | None = None,
    ) -> None:
        try:
            if crypto_done is not None and not crypto_done.is_set():
                await crypto_done.wait()
            for evt in events:
                start = time.perf_counter()
                try:
                    if evt.get("type") == ENCRYPTED and self.crypto is not None:
                        decrypted = await self.crypto.decrypt(evt)
                        if decrypted is None:
                            continue  # kept until its key arrives (crypto/service.py)
                        evt = decrypted
                        if not self.router.wants(evt):
                            continue  # e.g. chatter in a room that is no portal: no command
                    await self.router.handle_event(evt, replay)
                except Exception as e:
                    self.metrics.error("matrix_event")
                    self._event_failed(evt, e)
                self.metrics.handled("matrix", time.perf_counter() - start)
        except asyncio.CancelledError:
            # A stop cut it short: not a failure, and not done either (the transaction stays
            # unfinished and is replayed at the next start, like its crypto part).
            if replay:
                self.parking.interrupted("transaction", parking_key(txn))
            raise
        self._one_part_done(txn)

    def _one_part_done(self, txn: TxnKey) -> None:
        remaining = self._txn_remaining.get(txn, 1) - 1
        if remaining <= 0:
            self._txn_done(txn)
        else:
            self._txn_remaining[txn] = remaining

    def _event_failed(self, evt: dict[str, Any], e: Exception) -> None:
        """One line per event that failed; its traceback only the first time that exception
        comes from that place: junk repeats the same failure, and a traceback for each (deep
        in a replay, too) buried everything else in the log."""
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        site = (type(e), tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb else (type(e),)
        first = site not in self._event_failure_sites
        self._event_failure_sites.put(site, True)
        try:
            why = str(e)[:200]
        except Exception:  # a message built from junk (its repr nested too deep)
            why = "?"
        log.error(
            "Failed to handle event %s (%s in %s): %s: %s",
            _short(evt.get("event_id")),
            _short(evt.get("type")),
            _short(evt.get("room_id")),
            type(e).__name__,
            why,
            exc_info=e if first else None,
        )

    def _txn_done(self, txn: TxnKey) -> None:
        self._txn_remaining.pop(txn, None)
        self._txn_finished.append(txn)
        if self._txn_flush_task is None or self._txn_flush_task.done():
            self._txn_flush_task = self._spawn(self.flush_finished())

    async def flush_finished(self) -> None:
        while self._txn_finished:
            batch, self._txn_finished = self._txn_finished, []
            try:
                # What handling these events recorded commits before (or with) the mark
                # that ends their transaction's replay: one group commit for both.
                await self.store.finish_transactions(batch)
            except Exception:
                log.exception("Could not mark transactions finished (they will be replayed)")
                return

    async def replay_pending(self) -> None:
        """Dispatch, in order, the transactions stored but not finished before the last stop
        (counted together in one commit; one that failed too many replays is parked)."""
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
        allowed = await self.parking.replay_many(
            "transaction", [parking_key(t) for t, _ in replays]
        )
        for (txn, data), go in zip(replays, allowed, strict=True):
            if not go:
                self._spawn(self.tell_parked(txn, data))
                continue
            log.info("Replaying unfinished transaction %s", txn[0])
            self.dispatch_transaction(txn, data, replay=True)

    async def tell_parked(self, txn: TxnKey, data: dict[str, Any]) -> None:
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
                    f"({txn[0]}) failed {REPLAY_ATTEMPTS} replays and was set aside.",
                )
