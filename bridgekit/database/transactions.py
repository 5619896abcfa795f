"""The ``appservice_txn`` table: the durable inbox of the homeserver's transactions.

A transaction is stored before the homeserver gets its 200 and marked finished (its body
cleared) once everything its handling queued is committed; a restart replays the unfinished
ones. SQLite: the table has a connection of its own (``txn_db``), so acknowledging a
transaction never queues behind the inbox's work on the shared connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Literal

from mautrix.util.async_db import Database, Scheme

from ..matrix.appservice import TxnKey
from . import sqlite_work
from .commit import GroupCommit
from .records import now_ms as _now_ms

_FINISH_TXN = "UPDATE appservice_txn SET body=NULL WHERE txn_id=$1 AND digest=$2"
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
#: What :meth:`TransactionTable.store_transaction` found.
TxnStored = Literal["new", "retry", "reused"]


class TransactionTable:
    """Transactions from the homeserver (see the module docstring)."""

    def __init__(self, db: Database, txn_db: Database, commit: GroupCommit) -> None:
        self.db = db
        self.txn_db = txn_db
        self._txn_sqlite = txn_db.scheme == Scheme.SQLITE
        self._enqueue_write = commit.enqueue

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
        futures = [self._enqueue_write(_FINISH_TXN, t) for t in txns]
        if futures:
            await asyncio.gather(*futures)

    async def pending_transactions(self) -> list[tuple[TxnKey, str]]:
        rows = await self.db.fetch(
            "SELECT txn_id, digest, body FROM appservice_txn WHERE body IS NOT NULL "
            "ORDER BY received_at, txn_id"
        )
        return [((r["txn_id"], r["digest"]), r["body"]) for r in rows]

    async def prune_transactions(self, older_than_ms: int) -> None:
        await self.db.execute(
            "DELETE FROM appservice_txn WHERE body IS NULL AND received_at < $1",
            _now_ms() - older_than_ms,
        )
