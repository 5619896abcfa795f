"""Remote events into the durable outbox: committed in groups, then handed to their portals.

A connector's :meth:`~bridgekit.contract.connector.BridgeAPI.queue_remote_event` returns once
its event is a row of the ``outbox`` table; every event queued while one write runs shares the
next (a group commit), and each is then submitted to its portal's ordered queue
(:mod:`bridgekit.outbox.remote_queue`) in the order it was queued. A locked or full database
is retried with backoff; after ``OUTBOX_ATTEMPTS`` tries the callers get the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..contract.events import RemoteEvent, remote_event_from_json, remote_event_to_json
from ..database.store import OutboxItem, Store
from ..matrix.client import Backoff
from ..metrics import Metrics

log = logging.getLogger(__name__)

OUTBOX_ATTEMPTS = 6

_Pending = tuple[OutboxItem, RemoteEvent, "asyncio.Future[None] | None"]


class OutboxWriter:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        network_of: Callable[[str | None, RemoteEvent], str],
        submit: Callable[[OutboxItem, RemoteEvent | None], None],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[Any]],
    ) -> None:
        self.store = store
        self.metrics = metrics
        #: The event's network, checked against the login (see Bridge._network_of_event).
        self.network_of = network_of
        #: Hands a committed row to its portal's queue.
        self.submit = submit
        self.spawn = spawn
        self.pending: list[_Pending] = []
        self._flush_task: asyncio.Task[None] | None = None

    async def queue(self, login_id: str | None, event: RemoteEvent) -> None:
        """Return once ``event`` is committed."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.append(login_id, event, fut)
        await fut

    def queue_soon(self, login_id: str | None, event: RemoteEvent) -> None:
        """No task and no future per event: the group commit submits it (see BridgeAPI)."""
        try:
            self.append(login_id, event, None)
        except Exception:
            log.exception("Could not queue a remote event (%s)", event.kind)

    def append(
        self, login_id: str | None, event: RemoteEvent, fut: asyncio.Future[None] | None
    ) -> None:
        network = self.network_of(login_id, event)
        payload = remote_event_to_json(event)
        if not payload.isascii():
            try:
                payload.encode()
            except UnicodeEncodeError:  # a lone surrogate (json.loads of "\ud800" gives one):
                # no database takes it, and the whole group commit would fail with it
                payload = payload.encode("utf-8", "replace").decode()
                event = remote_event_from_json(payload)
        self.pending.append((OutboxItem(0, network, event.portal, login_id, payload), event, fut))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = self.spawn(self._flush())

    async def _flush(self) -> None:
        """Group commit: every event queued while the previous write ran goes in one txn,
        then each is submitted to its portal's queue, in the order they were queued."""
        while self.pending:
            batch, self.pending = self.pending, []
            seqs = await self._write(batch)
            if seqs is None:
                continue
            self.metrics.events_in("remote", len(batch))
            for (item, event, fut), seq in zip(batch, seqs, strict=True):
                item.seq = seq
                self.submit(item, event)
                if fut is not None and not fut.done():
                    fut.set_result(None)

    async def _write(self, batch: list[_Pending]) -> list[int] | None:
        rows = [(i.network, i.portal, i.login_id, i.payload) for i, _, _ in batch]
        backoff = Backoff(base=0.2, cap=5.0)
        for attempt in range(1, OUTBOX_ATTEMPTS + 1):
            try:
                return await self.store.outbox_add_many(rows)
            except Exception as e:  # a locked or full database: the batch is retried
                if attempt == OUTBOX_ATTEMPTS:
                    log.error("Could not store %d remote events: %s", len(batch), e)
                    for _, _, fut in batch:
                        if fut is not None and not fut.done():
                            fut.set_exception(e)
                    return None
                delay = backoff.next_delay()
                log.warning(
                    "Storing %d remote events failed (%s), retry %d in %.1fs",
                    len(batch),
                    e,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
        return None

    async def drain(self) -> None:
        """Wait until every queued remote event is committed (before stopping)."""
        while self._flush_task is not None and not self._flush_task.done():
            await asyncio.gather(self._flush_task, return_exceptions=True)
