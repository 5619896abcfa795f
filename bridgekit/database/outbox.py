"""The ``outbox`` table: remote events made durable before they are sent to Matrix.

Handled rows are deleted with the next commit that runs anyway
(:meth:`OutboxTable.outbox_done_later`), which is why this table hooks into the group commit
(:mod:`bridgekit.database.commit`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from mautrix.util.async_db import Database, Scheme

from ..contract.events import PortalKey
from . import sqlite_work
from .commit import GroupCommit, Write
from .records import OutboxItem
from .records import now_ms as _now_ms

_DELETE_OUTBOX = "DELETE FROM outbox WHERE seq=$1"
#: Longest wait of a handled outbox row's deletion for a commit to ride on (seconds).
DONE_LATER_DELAY = 1.0


class OutboxTable:
    """Outbox rows (see the module docstring)."""

    def __init__(self, db: Database, commit: GroupCommit) -> None:
        self.db = db
        self._sqlite = db.scheme == Scheme.SQLITE
        self._enqueue_write = commit.enqueue
        #: Handled outbox rows whose deletion rides on the next commit (see outbox_done_later).
        self._done_later: list[int] = []
        self._done_timer: asyncio.TimerHandle | None = None
        commit.take_riders = self._riding_writes

    def _riding_writes(self) -> list[Write]:
        """The deferred deletions as writes of the group commit about to run."""
        return [(_DELETE_OUTBOX, row, None) for row in self._take_done_later()]

    def _take_done_later(self) -> list[tuple[int]]:
        """The deferred outbox deletions, for the commit about to run."""
        if self._done_timer is not None:
            self._done_timer.cancel()
            self._done_timer = None
        rows, self._done_later = [(seq,) for seq in self._done_later], []
        return rows

    def commit_done_later(self) -> None:
        """Nothing else wrote in time: the deferred deletions get a commit of their own."""
        self._done_timer = None
        if self._done_later:
            for (seq,) in self._take_done_later():
                self._enqueue_write(_DELETE_OUTBOX, (seq,))

    async def outbox_add_many(
        self, items: list[tuple[str, PortalKey, str | None, str]]
    ) -> list[int]:
        """Append events (network, portal, login, payload); returns their sequence numbers."""
        now = _now_ms()
        query = (
            "INSERT INTO outbox (network, portal_id, receiver, login_id, payload, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq"
        )
        rows = [
            (network, key.id, key.receiver, login_id, payload, now)
            for network, key, login_id, payload in items
        ]
        done = self._take_done_later()
        if self._sqlite:
            q, delete = sqlite_work.sql(query), sqlite_work.sql(_DELETE_OUTBOX)

            def work(c: Any) -> list[int]:
                def insert() -> list[int]:
                    if done:
                        c.executemany(delete, done)
                    return [c.execute(q, row).fetchone()[0] for row in rows]

                return sqlite_work.transaction(c, insert)

            return await sqlite_work.run(self.db, work)
        async with self.db.acquire() as conn, conn.transaction():
            if done:
                await conn.executemany(_DELETE_OUTBOX, done)
            return [await conn.fetchval(query, *row) for row in rows]

    async def outbox_merge(self, first: int, payload: str, rest: Sequence[int]) -> None:
        """Make a merge of outbox rows durable before it is sent: row ``first`` takes the
        merged ``payload`` and the ``rest`` go, in one commit. A replay after a crash then
        sends the same lines under the same transaction id, which the homeserver
        deduplicates; merged anew, they could differ, and lines would be lost or doubled."""
        fut = self._enqueue_write("UPDATE outbox SET payload=$1 WHERE seq=$2", (payload, first))
        for seq in rest:
            fut = self._enqueue_write(_DELETE_OUTBOX, (seq,))
        await fut  # writes commit in order, in one transaction

    def outbox_done_later(self, seqs: Iterable[int]) -> None:
        """Delete handled rows with the next commit that runs anyway (the next event's outbox
        row, a mapping), or after :data:`DONE_LATER_DELAY` if none comes: a commit of their
        own per event cost a third of the outbox's writes. Losing them in a crash is safe:
        a replayed row that was handled is recognised (its mapping exists, and its sends
        reuse their transaction ids, which the homeserver deduplicates)."""
        self._done_later.extend(seqs)
        if self._done_later and self._done_timer is None:
            loop = asyncio.get_running_loop()
            self._done_timer = loop.call_later(DONE_LATER_DELAY, self.commit_done_later)

    async def outbox_pending(self) -> list[OutboxItem]:
        rows = await self.db.fetch(
            "SELECT seq, network, portal_id, receiver, login_id, payload FROM outbox ORDER BY seq"
        )
        return [
            OutboxItem(
                r["seq"],
                r["network"],
                PortalKey(r["portal_id"], r["receiver"]),
                r["login_id"],
                r["payload"],
            )
            for r in rows
        ]
