"""A pool transaction that reads, then writes, while the event loop's own connection writes
in between (bridgekit/database/sqlite_txn.py): it must not fail with "database is locked"."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bridgekit.database import sqlite_work
from bridgekit.database.db import create_database


async def test_a_read_then_write_transaction_is_not_broken_by_a_write_in_place(
    tmp_path: Path,
) -> None:
    """What mautrix.crypto does when it stores a user's devices: read them, then write, in
    one transaction; meanwhile the loop connection tries a unit in place. With a DEFERRED
    BEGIN the unit's commit made the transaction's snapshot stale and its write failed at
    once; begun IMMEDIATE, the transaction holds the write lock and the unit gives up (it is
    then run in the thread, after the transaction)."""
    db = create_database(f"sqlite:///{tmp_path}/txn.db")
    await db.start()
    try:
        await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        lc = sqlite_work.attach(db)
        assert lc is not None

        def unit(c: sqlite3.Connection) -> None:
            sqlite_work.transaction(c, lambda: c.execute("INSERT INTO t VALUES (2, 'loop')"))

        async with db.acquire() as conn, conn.transaction():
            assert await conn.fetch("SELECT * FROM t") == []
            done, _ = lc.try_run(unit)  # the event loop's connection, in place
            await conn.execute("INSERT INTO t VALUES (1, 'pool')")
        assert not done  # it gave up, untouched: the transaction held the write lock
        await sqlite_work.run(db, unit)
        rows = await db.fetch("SELECT k, v FROM t ORDER BY k")
        assert [(r["k"], r["v"]) for r in rows] == [(1, "pool"), (2, "loop")]
    finally:
        await sqlite_work.detach(db)
        await db.stop()
