"""SQLite transactions on mautrix's pool begin IMMEDIATE, not DEFERRED.

mautrix's aiosqlite connection opens ``conn.transaction()`` with a plain ``BEGIN``
(DEFERRED): the transaction reads first and takes the write lock at its first write. In WAL
mode that upgrade fails at once with SQLITE_BUSY ("database is locked"), whatever the
``busy_timeout``, if another connection committed since the transaction's first read: its
snapshot is stale and waiting cannot help. bridgekit has such a connection, the event loop's
own (:mod:`.sqlite_work`), writing all the time; and mautrix.crypto reads then writes in one
transaction when it stores a user's devices (``_fetch_keys``), which is on the way of the first
message into an encrypted portal: that message then failed, and was not bridged until a
restart. BEGIN IMMEDIATE takes the write lock first, waiting for it under ``busy_timeout`` like
any single statement, so a transaction never has to upgrade.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mautrix.util.async_db import aiosqlite as mau_sqlite


@asynccontextmanager
async def _immediate_transaction(self: mau_sqlite.TxnConnection) -> AsyncIterator[None]:
    """mautrix's ``TxnConnection.transaction``, but BEGIN IMMEDIATE."""
    if mau_sqlite.in_transaction.get():
        yield
        return
    await self.execute("BEGIN IMMEDIATE")
    token = mau_sqlite.in_transaction.set(True)
    try:
        yield
    except Exception:
        await self.rollback()
        raise
    else:
        await self.commit()
    finally:
        mau_sqlite.in_transaction.reset(token)


def use_immediate_transactions() -> None:
    """Make every SQLite pool transaction begin IMMEDIATE (idempotent)."""
    mau_sqlite.TxnConnection.transaction = _immediate_transaction  # type: ignore[assignment]
