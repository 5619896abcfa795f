"""One trip to aiosqlite's thread per unit of work: all of it commits, or none of it does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mautrix.util.async_db import Database

from bridgekit import sqlite_work
from bridgekit.db import create_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(f"sqlite:///{tmp_path}/work.db")
    await database.start()
    await database.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    yield database
    await database.stop()


async def values(db: Database) -> list[str]:
    return [r["v"] for r in await db.fetch("SELECT v FROM t ORDER BY k")]


def test_dollar_placeholders_become_sqlite_numbered_ones():
    assert sqlite_work.sql("SELECT $1, $2, $10") == "SELECT ?1, ?2, ?10"


async def test_groups_commit_together(db: Database):
    insert = "INSERT INTO t (k, v) VALUES ($1, $2)"
    await sqlite_work.run(
        db,
        lambda c: sqlite_work.execute_groups(
            c, [(insert, [(1, "a"), (2, "b")]), ("UPDATE t SET v=$1 WHERE k=$2", [("B", 2)])]
        ),
    )
    assert await values(db) == ["a", "B"]


async def test_a_failing_statement_rolls_the_whole_unit_back(db: Database):
    insert = "INSERT INTO t (k, v) VALUES ($1, $2)"
    with pytest.raises(Exception, match="UNIQUE"):
        await sqlite_work.run(
            db, lambda c: sqlite_work.execute_groups(c, [(insert, [(1, "a"), (1, "dup")])])
        )
    assert await values(db) == []
    # The connection is usable (not left inside a transaction) afterwards.
    await sqlite_work.run(db, lambda c: sqlite_work.execute_groups(c, [(insert, [(1, "ok")])]))
    assert await values(db) == ["ok"]


async def test_inside_an_open_transaction_the_unit_joins_it(db: Database):
    insert = "INSERT INTO t (k, v) VALUES ($1, $2)"
    with pytest.raises(RuntimeError):
        async with db.acquire() as conn, conn.transaction():
            await conn.execute(insert, 1, "outer")
            await sqlite_work.run(
                db, lambda c: sqlite_work.execute_groups(c, [(insert, [(2, "inner")])])
            )
            raise RuntimeError("the outer transaction fails after the unit")
    assert await values(db) == []  # the unit did not commit on its own
