"""Running the outbox: one job per remote event, in order per portal, merging lines on the way.

A remote event is committed to the ``outbox`` table first (:meth:`Bridge.queue_remote_event`),
then queued here as an :class:`OutboxJob` in its portal's lane
(:class:`~bridgekit.objects.portal.Portals`: one key of an
:class:`~bridgekit.outbox.ordering.OrderedExecutor` per portal). A job that starts with a
plain line may take the lines queued right behind it into one Matrix event
(:mod:`bridgekit.outbox.coalesce`), and, while its sender is streaming lines (a paste, a bot),
may wait a moment for more (:class:`StreamHold`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Protocol

from ..contract.events import (
    RemoteEvent,
    RemoteMessage,
    remote_event_from_json,
    remote_event_to_json,
)
from ..database.store import OutboxItem
from ..objects.portal import Portals
from .coalesce import MAX_LINES, mergeable
from .parking import REPLAY_ATTEMPTS

if TYPE_CHECKING:
    from ..contract.connector import NetworkConnector
    from ..database.store import Store
    from ..metrics import Metrics
    from .parking import Parking

#: Lines of one sender in one portal that arrive this close together are a stream (a paste,
#: a bot, a backlog relayed at once), not someone typing. Connectors may read a stream in
#: batches (the IRC connector rests up to 0.2 s between reads of a flood, which nearly halves
#: its CPU per line): the gap must exceed such a pause, or each batch would look like
#: the end of the stream. Nobody types two lines a quarter of a second apart.
STREAM_GAP = 0.25
#: The ``kind`` of an outbox payload that holds lines already merged into one Matrix event.
MERGED = "merged-lines"

_MERGED_PREFIX = json.dumps({"kind": MERGED})[:-1]

log = logging.getLogger("bridgekit.outbox")


def merged_payload(lines: list[RemoteMessage]) -> str:
    return json.dumps({"kind": MERGED, "lines": [remote_event_to_json(e) for e in lines]})


def merged_lines(payload: str) -> list[RemoteMessage] | None:
    """The lines of a merged payload (None for any other event)."""
    if not payload.startswith(_MERGED_PREFIX):
        return None
    lines = [remote_event_from_json(raw) for raw in json.loads(payload)["lines"]]
    return [e for e in lines if isinstance(e, RemoteMessage)]


class StreamHold:
    """How long a merge that starts inside a stream of lines waits for the rest of it.

    Merging alone takes only what is already queued when the portal's previous event is done,
    so 50 lines a second go out as events of 3-4 lines, and each event costs the homeserver as
    much as a lone line (on the benchmark, Synapse spent 16-18 ms of CPU per line). With
    ``hold`` > 0, a line that came within :data:`STREAM_GAP` of its sender's previous line
    waits until ``hold`` seconds after it arrived, or until the sender pauses for STREAM_GAP,
    the merge is full, or someone else's event is queued behind it, whichever comes first.

    A line that does not follow another of its sender within STREAM_GAP, which is everything a
    person types, is never held: the first line of a paste also goes out at once.
    """

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self._last: dict[Hashable, float] = {}
        #: portal key -> (sender id, future) of the job holding that portal, to wake it early.
        self._waiting: dict[Hashable, tuple[str, asyncio.Future[bool]]] = {}

    def arrived(self, portal: Hashable, sender: str, now: float) -> float | None:
        """Note a line's arrival; its arrival time if it continues a stream, else None."""
        if self.hold <= 0:
            return None
        key = (portal, sender)
        last = self._last.get(key)
        self._last[key] = now
        if len(self._last) > 4096:  # only the last STREAM_GAP seconds matter
            self._last = {k: t for k, t in self._last.items() if now - t < STREAM_GAP}
        waiting = self._waiting.get(portal)
        if waiting is not None and waiting[0] != sender:
            _wake(waiting[1], early=True)  # a line of someone else ends the merge: stop holding
        return now if last is not None and now - last < STREAM_GAP else None

    def interrupt(self, portal: Hashable) -> None:
        """Something that cannot join the merge was queued behind it (or the merge is full)."""
        waiting = self._waiting.get(portal)
        if waiting is not None:
            _wake(waiting[1], early=True)

    def release_at(self, portal: Hashable, sender: str, held_from: float) -> float:
        last = self._last.get((portal, sender), held_from)
        return min(held_from + self.hold, last + STREAM_GAP)

    async def wait(
        self, portal: Hashable, sender: str, held_from: float, full: Callable[[], bool]
    ) -> None:
        """Sleep until :meth:`release_at`, re-reading it as lines arrive; ``full()`` says when
        no more lines could join."""
        loop = asyncio.get_running_loop()
        while not full():
            delay = self.release_at(portal, sender, held_from) - time.monotonic()
            if delay <= 0:
                return
            wake: asyncio.Future[bool] = loop.create_future()
            self._waiting[portal] = (sender, wake)
            timer = loop.call_later(delay, _wake, wake)
            try:
                await wake
            finally:
                timer.cancel()
                if self._waiting.get(portal, (None, None))[1] is wake:
                    del self._waiting[portal]
            if wake.result():  # woken early: someone else spoke, or the merge is full
                return


def _wake(fut: asyncio.Future[bool], early: bool = False) -> None:
    if not fut.done():
        fut.set_result(early)


class RemoteHandler(Protocol):
    """Where a job's events go (:class:`~bridgekit.portal.remote_to_matrix.RemoteToMatrix`)."""

    async def handle_remote_event(
        self, network: str, login_id: str | None, evt: RemoteEvent, seq: int
    ) -> None: ...

    async def handle_remote_messages(
        self, network: str, login_id: str | None, lines: list[RemoteMessage], seq: int
    ) -> None: ...


class RemoteQueue:
    """The outbox's running half: submits each stored row's :class:`OutboxJob` to its
    portal's lane and holds what the jobs use (built with them, not with the bridge)."""

    def __init__(
        self,
        *,
        store: Store,
        parking: Parking,
        metrics: Metrics,
        portals: Portals,
        connectors: Mapping[str, NetworkConnector],
        stream_hold: StreamHold,
        handler: RemoteHandler,
        send_notice: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.parking = parking
        self.metrics = metrics
        self.portals = portals
        self.connectors = connectors
        self.stream_hold = stream_hold
        self.handler = handler
        self.send_notice = send_notice

    async def resume(self) -> None:
        """Queue the rows stored but not handled before the last stop (parked ones stay)."""
        outbox = await self.store.outbox_pending()
        await self.parking.keep_only("outbox", (str(i.seq) for i in outbox))
        for item in outbox:
            if not self.parking.is_parked("outbox", str(item.seq)):
                self.submit(item)

    def submit(self, item: OutboxItem, event: RemoteEvent | None = None) -> None:
        """Queue an outbox row's job in its portal's lane, behind the portal's earlier ones."""
        job = OutboxJob(self, item, event)
        key = job.lane
        portals = self.portals
        hold = self.stream_hold
        if hold.hold > 0 and event is not None and self.connectors[item.network].merge_backlog:
            if type(event) is RemoteMessage and event.sender is not None:
                job.held_from = hold.arrived(key, event.sender.remote_id, time.monotonic())
            else:
                hold.interrupt(key)
        portals.submit(key, job)
        if hold.hold > 0 and portals.queued(key) > MAX_LINES:
            hold.interrupt(key)


class OutboxJob:
    """One outbox row's work. A class rather than a closure so that a running job can look
    at the rows queued behind it (to merge a backlog of lines into one Matrix event)."""

    __slots__ = (
        "queue", "item", "lane", "_event", "held_from", "lines", "replayed", "undecodable",
    )  # fmt: skip

    def __init__(self, queue: RemoteQueue, item: OutboxItem, event: RemoteEvent | None) -> None:
        self.queue = queue
        self.item = item
        #: Its portal's lane (bridgekit/objects/portal.py), named once.
        self.lane = Portals.lane(item.network, item.portal)
        self._event = event
        self.replayed = event is None  # read back from the database after a restart
        #: Replayed after a crash: the lines this row was merged from before it.
        self.lines: list[RemoteMessage] | None = None
        #: Why a replayed row's payload does not decode (written by another version, or
        #: damaged): it is parked, never run, and nothing queued before it trips on it.
        self.undecodable: str | None = None
        if event is None:
            try:
                self.lines = merged_lines(item.payload)
                self._event = self.lines[0] if self.lines else None
                if self._event is None:
                    self._event = remote_event_from_json(item.payload)
            except Exception as e:  # noqa: BLE001 - any damage: the row is set aside
                self.undecodable = f"{type(e).__name__}: {str(e)[:200]}"
        #: Arrival time when this line continues a stream (see :class:`StreamHold`).
        self.held_from: float | None = None

    @property
    def event(self) -> RemoteEvent:
        assert self._event is not None, "an undecodable row is never run"
        return self._event

    async def __call__(self) -> None:
        q, item = self.queue, self.item
        replayed = self.replayed
        if self.undecodable is not None:
            await q.parking.park(
                "outbox", str(item.seq), f"its payload does not decode ({self.undecodable})"
            )
            await self._tell_parked("its stored form no longer reads back")
            return
        if replayed and not await q.parking.replay("outbox", str(item.seq)):
            await self._tell_parked()  # replayed too often: kept, no longer run
            return
        items = [item]
        start = time.perf_counter()
        try:
            evt = self.event
            if self.lines:  # merged before a crash: the same lines again, nothing more
                await q.handler.handle_remote_messages(
                    item.network, item.login_id, self.lines, item.seq
                )
                return
            if type(evt) is RemoteMessage and q.connectors[item.network].merge_backlog:
                if self.held_from is not None and evt.sender is not None:
                    await self._hold(evt.sender.remote_id)
                merged = self._take_mergeable(evt, items)
                if len(merged) > 1:
                    try:
                        await q.store.outbox_merge(
                            item.seq, merged_payload(merged), [i.seq for i in items[1:]]
                        )
                    except Exception:
                        log.exception("Could not record a merge of %d lines", len(merged))
                    await q.handler.handle_remote_messages(
                        item.network, item.login_id, merged, item.seq
                    )
                    return
            await q.handler.handle_remote_event(item.network, item.login_id, evt, item.seq)
        except asyncio.CancelledError:
            if replayed:  # a stop cut it short: not a failure
                q.parking.interrupted("outbox", str(item.seq))
            raise
        finally:
            q.metrics.handled("remote", time.perf_counter() - start)
            q.store.outbox_done_later(i.seq for i in items)

    async def _tell_parked(self, why: str = f"it failed {REPLAY_ATTEMPTS} replays") -> None:
        portal = await self.queue.store.get_portal(self.item.network, self.item.portal)
        if portal is not None and portal.mxid:
            await self.queue.send_notice(
                portal.mxid,
                f"A message from the network could not be bridged here: {why} and it was "
                f"set aside (outbox row {self.item.seq}).",
            )

    async def _hold(self, sender: str) -> None:
        key = self.lane
        portals = self.queue.portals
        login_id = self.item.login_id

        def joinable(job: object) -> bool:
            if not isinstance(job, OutboxJob) or job.item.login_id != login_id or job.lines:
                return False
            evt = job._event
            return (
                type(evt) is RemoteMessage
                and evt.sender is not None
                and (evt.sender.remote_id == sender)
            )

        def cannot_grow() -> bool:
            """Full, or blocked by something queued that cannot join (told apart cheaply;
            :meth:`_take_mergeable` applies the exact rules)."""
            behind = portals.behind(key)
            return len(behind) >= MAX_LINES or not all(map(joinable, behind))

        assert self.held_from is not None
        await self.queue.stream_hold.wait(key, sender, self.held_from, cannot_grow)

    def _take_mergeable(self, first: RemoteMessage, items: list[OutboxItem]) -> list[RemoteMessage]:
        """Pull the messages queued right behind ``first`` that may share its Matrix event
        (see :mod:`bridgekit.outbox.coalesce`); their outbox rows are appended to ``items``."""
        merged = [first]
        size = len(first.content.body)
        login_id = self.item.login_id

        def accept(nxt: object) -> bool:
            if (
                not isinstance(nxt, OutboxJob)
                or nxt.item.login_id != login_id
                or nxt.lines
                or nxt.undecodable is not None
            ):
                return False
            evt = nxt.event
            return isinstance(evt, RemoteMessage) and mergeable(first, evt, len(merged), size)

        take_next, key = self.queue.portals.take_next, self.lane
        while (taken := take_next(key, accept)) is not None:
            assert isinstance(taken, OutboxJob)
            evt = taken.event
            assert isinstance(evt, RemoteMessage)
            merged.append(evt)
            items.append(taken.item)
            size += 1 + len(evt.content.body)
        return merged
