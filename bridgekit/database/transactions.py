"""The homeserver's transactions: the durable inbox (``appservice_txn``) and their
"finished" marks (``appservice_txn_done``).

A transaction is stored before the homeserver gets its 200. Once everything its handling
queued is durable it is marked finished: the mark is a row of ``appservice_txn_done`` in the
main database, written by the group commit with (or after) what the handling wrote, so a
transaction never stops being replayable before what it did is durable. A restart replays the
stored transactions that have a body and no mark (:meth:`TransactionTable.pending_transactions`).

SQLite: the inbox is a file of its own (:mod:`.inbox`, ``txn_db``), so acknowledging a
transaction never waits for the main file's write lock, which the group commit holds; that is
why the mark is a row in the main database and not an UPDATE of the transaction's row. Marks are
applied to the inbox later (:meth:`TransactionTable.settle_transactions`: the bodies cleared,
then the marks deleted; a crash between the two leaves marks that are applied again, harmlessly).
PostgreSQL keeps one database and the same model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from mautrix.util.async_db import Database, Scheme

from ..matrix.appservice import TxnKey
from . import sqlite_work
from .commit import GroupCommit
from .records import now_ms as _now_ms

_MARK_DONE = (
    "INSERT INTO appservice_txn_done (txn_id, digest) VALUES ($1, $2) "
    "ON CONFLICT (txn_id, digest) DO NOTHING"
)
_DONE_MARKS = "SELECT txn_id, digest FROM appservice_txn_done"
_DELETE_MARK = "DELETE FROM appservice_txn_done WHERE txn_id=$1 AND digest=$2"
_CLEAR_BODY = "UPDATE appservice_txn SET body=NULL WHERE txn_id=$1 AND digest=$2"
_WITH_BODY = (
    "SELECT txn_id, digest FROM appservice_txn WHERE body IS NOT NULL ORDER BY received_at, txn_id"
)
_BODY = "SELECT body FROM appservice_txn WHERE txn_id=$1 AND digest=$2"
_TXN_DIGESTS = "SELECT digest FROM appservice_txn WHERE txn_id=$1"
_INSERT_TXN = (
    "INSERT INTO appservice_txn (txn_id, digest, body, received_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (txn_id, digest) DO NOTHING"
)
#: PostgreSQL: look-up and insert in one round trip (the outer SELECT sees the table as it was).
_STORE_TXN_PG = (
    f"WITH prior AS ({_TXN_DIGESTS}), ins AS ({_INSERT_TXN} RETURNING 1) "
    "SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM prior) AS prior"
)
#: Marks settled per database transaction (each file's write lock is held that long).
SETTLE_CHUNK = 200
#: What :meth:`TransactionTable.store_transaction` found.
TxnStored = Literal["new", "retry", "reused"]


class TransactionTable:
    """Transactions from the homeserver (see the module docstring). ``db``: the main database
    (the marks, in ``commit``); ``txn_db``: the inbox (the same pool unless SQLite)."""

    def __init__(self, db: Database, txn_db: Database, commit: GroupCommit) -> None:
        self.db = db
        self.txn_db = txn_db
        self._sqlite = db.scheme == Scheme.SQLITE
        self._txn_sqlite = txn_db.scheme == Scheme.SQLITE
        self._enqueue_write = commit.enqueue
        self._settle_lock = asyncio.Lock()

    async def store_transaction(self, txn: TxnKey, body: str | None) -> TxnStored:
        """Store a transaction: ``"retry"`` if this (txnId, digest) was already stored,
        ``"reused"`` if only its txnId was (a homeserver that restarted and numbers its
        transactions again), else ``"new"``. ``body=None`` records only the key.

        SQLite: the look-up runs before the insert, so a unit retried in the thread (the loop's
        connection was busy) gives the same answer."""
        txn_id, digest = txn
        args = (txn_id, digest, body, _now_ms())
        if self._txn_sqlite:
            select, insert = sqlite_work.sql(_TXN_DIGESTS), sqlite_work.sql(_INSERT_TXN)

            def work(c: Any) -> TxnStored:
                prior = [r[0] for r in c.execute(select, (txn_id,)).fetchall()]
                if digest in prior or c.execute(insert, args).rowcount != 1:
                    return "retry"
                return "reused" if prior else "new"

            return await sqlite_work.run(self.txn_db, work, small=True)
        row = await self.txn_db.fetchrow(_STORE_TXN_PG, *args)
        if not row["inserted"]:
            return "retry"
        return "reused" if row["prior"] else "new"

    async def finish_transactions(self, txns: Iterable[TxnKey]) -> None:
        """Mark transactions handled (no longer replayed after a restart), in the group commit.

        Everything their handling queued there (message mappings, deferred outbox deletions)
        commits first or in the same transaction, so a transaction never stops being
        replayable before what it did is durable; and a Matrix message costs one commit
        fewer than with a commit of its own for this.
        """
        futures = [self._enqueue_write(_MARK_DONE, t) for t in txns]
        if futures:
            await asyncio.gather(*futures)

    async def _done_marks(self) -> set[TxnKey]:
        return {(r["txn_id"], r["digest"]) for r in await self.db.fetch(_DONE_MARKS)}

    async def pending_transactions(self) -> list[tuple[TxnKey, str]]:
        """Stored transactions with a body and no "finished" mark, in arrival order.

        The marks are read before the inbox: a settle that runs meanwhile clears a body before
        it deletes its mark, so a finished transaction is never taken for a pending one (one
        finished between the two reads may be, as if it had finished a moment later)."""
        done = await self._done_marks()
        keys = [
            (r["txn_id"], r["digest"])
            for r in await self.txn_db.fetch(_WITH_BODY)
            if (r["txn_id"], r["digest"]) not in done
        ]
        pending: list[tuple[TxnKey, str]] = []
        for key in keys:  # bodies only of these: the finished ones may be many and large
            body = await self.txn_db.fetchval(_BODY, *key)
            if body is not None:
                pending.append((key, body))
        return pending

    async def settle_transactions(self) -> int:
        """Apply the "finished" marks to the inbox (clear those bodies), then delete them;
        return how many. Periodic and at start: until then the bodies stay on disk and the
        marks accumulate. A crash between the two steps leaves marks whose bodies are already
        cleared: the next settle clears them again and deletes them."""
        async with self._settle_lock:
            marks = sorted(await self._done_marks())
            for start in range(0, len(marks), SETTLE_CHUNK):
                chunk = marks[start : start + SETTLE_CHUNK]
                await _executemany(self.txn_db, self._txn_sqlite, _CLEAR_BODY, chunk)
                await _executemany(self.db, self._sqlite, _DELETE_MARK, chunk)
            return len(marks)

    async def prune_transactions(self, older_than_ms: int) -> None:
        """Forget finished transactions received more than ``older_than_ms`` ago (their keys
        recognise a homeserver's retries until then)."""
        await self.settle_transactions()
        await self.txn_db.execute(
            "DELETE FROM appservice_txn WHERE body IS NULL AND received_at < $1",
            _now_ms() - older_than_ms,
        )


async def _executemany(db: Database, sqlite: bool, query: str, rows: Sequence[Any]) -> None:
    """One statement for many rows, in one database transaction (SQLite: one trip to the
    pool's thread, so the file's write lock is held only while it runs)."""
    if sqlite:
        groups = [(query, list(rows))]
        await sqlite_work.in_thread(db, lambda c: sqlite_work.execute_groups(c, groups))
        return
    async with db.acquire() as conn, conn.transaction():
        await conn.executemany(query, rows)
