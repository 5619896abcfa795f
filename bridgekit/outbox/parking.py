"""Work that keeps failing is set aside (parked) instead of being replayed at every start.

A transaction or outbox row still stored at a start was not finished by the previous run:
usually a crash or a stop in the middle, and one replay finishes it. But one that itself
brings the bridge down (or whose completion can never be recorded) would be replayed, and
its messages sent again, at every start. So each replay of one is counted, durably and before
it runs; once :data:`REPLAY_ATTEMPTS` replays did not finish it, it is parked: kept in its
table (for an operator to look at), no longer replayed, counted in ``/status`` and the
``bridgekit_parked`` metric, and the rooms it belongs to are told.

The counts live in ``kv`` rows (``replay/<kind>/<id>``), written only when something is
replayed, that is after an unclean stop: the hot paths never touch them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..database.store import Store
    from ..metrics import Metrics

log = logging.getLogger("bridgekit.outbox.parking")

#: Replays of one transaction or outbox row before it is parked.
REPLAY_ATTEMPTS = 3
KINDS = ("transaction", "outbox")
_PREFIX = "replay/"


class Parking:
    """Replay attempts and parked items, per kind (``transaction``, ``outbox``)."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self.attempts: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        #: Parked items: id -> when it was parked (unix ms).
        self.parked: dict[str, dict[str, int]] = {k: {} for k in KINDS}
        self._interrupted: set[tuple[str, str]] = set()

    async def load(self) -> None:
        for key, value in (await self.store.kv_with_prefix(_PREFIX)).items():
            _, kind, item_id = key.split("/", 2)
            if kind not in KINDS:
                continue
            if value.startswith("parked:"):
                self.parked[kind][item_id] = int(value.removeprefix("parked:"))
            else:
                self.attempts[kind][item_id] = int(value)
        self._count()

    def _count(self) -> None:
        self.metrics.parked = self.counts()

    async def _set(self, kind: str, item_id: str, value: str | None) -> None:
        await self.store.set_kv(f"{_PREFIX}{kind}/{item_id}", value)

    def is_parked(self, kind: str, item_id: str) -> bool:
        return item_id in self.parked[kind]

    def counts(self) -> dict[str, int]:
        return {kind: len(items) for kind, items in self.parked.items()}

    async def keep_only(self, kind: str, pending: Iterable[str]) -> None:
        """Forget the attempts of items that are no longer stored (they finished) and the
        parking of items an operator removed."""
        ids = set(pending)
        gone: list[str] = []
        for table in (self.attempts[kind], self.parked[kind]):
            for item_id in [i for i in table if i not in ids]:
                del table[item_id]
                gone.append(item_id)
        # Concurrent: the deletions share one group commit (a backlog replayed after a
        # crash leaves one row per item).
        await asyncio.gather(*(self._set(kind, i, None) for i in gone))
        self._count()

    def interrupted(self, kind: str, item_id: str) -> None:
        """A replay cut short by a clean stop did not fail: it is not counted (else a long
        homeserver outage spanning a few restarts would park work that is only waiting).
        Synchronous, for a cancelled task: the write rides on the stop's last commit."""
        done = self.attempts[kind].get(item_id)
        if not done or (kind, item_id) in self._interrupted:
            return
        self._interrupted.add((kind, item_id))
        if done > 1:
            self.attempts[kind][item_id] = done - 1
        else:
            del self.attempts[kind][item_id]
        self.store.set_kv_soon(f"{_PREFIX}{kind}/{item_id}", str(done - 1) if done > 1 else None)

    async def replay_many(self, kind: str, item_ids: list[str]) -> list[bool]:
        """:meth:`replay` for several items, sharing one commit."""
        return list(await asyncio.gather(*(self.replay(kind, i) for i in item_ids)))

    async def replay(self, kind: str, item_id: str) -> bool:
        """Count one more replay of this item (durable before it runs); False when its
        attempts are used up: it is parked now and must not run."""
        done = self.attempts[kind].get(item_id, 0)
        if done >= REPLAY_ATTEMPTS:
            await self.park(kind, item_id, f"{done} replays did not finish it")
            return False
        self.attempts[kind][item_id] = done + 1
        await self._set(kind, item_id, str(done + 1))
        return True

    async def park(self, kind: str, item_id: str, why: str) -> None:
        """Set an item aside now: kept, listed, no longer run (one that can never run, such
        as a payload that no longer decodes, need not wait for its replays)."""
        self.attempts[kind].pop(item_id, None)
        parked_at = self.parked[kind][item_id] = int(time.time() * 1000)
        await self._set(kind, item_id, f"parked:{parked_at}")
        self._count()
        log.error("Parked %s %s: %s; it is kept but no longer replayed", kind, item_id, why)
