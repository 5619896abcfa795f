"""A unit of work runs whole: all of it commits, or none of it does; in place on the event
loop's own connection when the database is free, else in one trip to aiosqlite's thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mautrix.util.async_db import Database

from bridgekit.database import sqlite_work
from bridgekit.database.db import create_database


@pytest.fixture(params=["thread", "loop connection"])
async def db(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    database = create_database(f"sqlite:///{tmp_path}/work.db")
    await database.start()
    await database.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    if request.param == "loop connection":
        assert sqlite_work.attach(database) is not None
    yield database
    await sqlite_work.detach(database)
    await database.stop()


@pytest.fixture
async def looped(tmp_path: Path) -> AsyncIterator[tuple[Database, sqlite_work.LoopConnection]]:
    database = create_database(f"sqlite:///{tmp_path}/work.db")
    await database.start()
    await database.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    lc = sqlite_work.attach(database)
    assert lc is not None
    yield database, lc
    await sqlite_work.detach(database)
    await database.stop()


def insert_unit(k: int, v: str, threads: list[int] | None = None):
    def work(c: sqlite3.Connection) -> None:
        if threads is not None:
            threads.append(threading.get_ident())
        sqlite_work.execute_groups(c, [("INSERT INTO t (k, v) VALUES ($1, $2)", [(k, v)])])

    return work


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


async def test_with_a_loop_connection_a_unit_runs_in_place(looped):
    db, lc = looped
    threads: list[int] = []
    await sqlite_work.run(db, insert_unit(1, "a", threads))
    assert threads == [threading.get_ident()]  # no trip to aiosqlite's thread
    assert (lc.units, lc.gave_up) == (1, 0)
    assert await values(db) == ["a"]  # committed: the pool's connection sees it


async def test_a_busy_database_sends_the_unit_to_the_thread_instead_of_waiting(looped, tmp_path):
    db, lc = looped
    other = sqlite3.connect(tmp_path / "work.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    other.execute("INSERT INTO t (k, v) VALUES (1, 'other')")
    threads: list[int] = []
    unit = asyncio.ensure_future(sqlite_work.run(db, insert_unit(2, "ours", threads)))
    await asyncio.sleep(0.2)
    assert lc.gave_up == 1  # gave up in place at once, without touching anything...
    assert not unit.done()  # ...and waits for the lock in the thread, not on the loop
    other.execute("COMMIT")
    other.close()
    await unit
    assert threads[0] == threading.get_ident() and threads[-1] != threading.get_ident()
    assert await values(db) == ["other", "ours"]


async def test_the_loop_connection_never_checkpoints_the_thread_does(looped, tmp_path, monkeypatch):
    db, lc = looped
    monkeypatch.setattr(sqlite_work, "CHECKPOINT_EVERY", 3)
    assert lc.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    marker = "marker-8d1f0c"
    for k in range(3):
        await sqlite_work.run(db, insert_unit(k, f"{marker}-{k}"))
    main_file = (tmp_path / "work.db").read_bytes()
    assert marker.encode() not in main_file  # the rows are in the write-ahead log only
    assert lc._checkpoint is not None  # the third write asked for a checkpoint, in the thread
    await lc._checkpoint
    assert marker.encode() in (tmp_path / "work.db").read_bytes()


async def test_a_failing_unit_in_place_leaves_no_transaction_open(looped):
    db, lc = looped
    await sqlite_work.run(db, insert_unit(1, "a"))
    with pytest.raises(sqlite3.IntegrityError):
        await sqlite_work.run(db, insert_unit(1, "dup"))
    assert not lc.conn.in_transaction
    await sqlite_work.run(db, insert_unit(2, "b"))
    assert await values(db) == ["a", "b"]


async def test_after_a_slow_unit_in_place_the_thread_takes_the_next_ones(looped, monkeypatch):
    db, lc = looped
    monkeypatch.setattr(sqlite_work, "SLOW_UNIT", 0.0)  # every unit counts as a stall
    threads: list[int] = []
    await sqlite_work.run(db, insert_unit(1, "a", threads))
    await sqlite_work.run(db, insert_unit(2, "b", threads))
    main = threading.get_ident()
    assert threads[0] == main and threads[1] != main
    assert lc.slow == 1
    assert await values(db) == ["a", "b"]


async def test_under_write_load_the_thread_takes_the_units(looped, monkeypatch):
    db, lc = looped
    monkeypatch.setattr(sqlite_work, "BUSY_ROWS_PER_S", 2)
    threads: list[int] = []
    for k in range(4):
        await sqlite_work.run(db, insert_unit(k, str(k), threads))
    main = threading.get_ident()
    # Three rows within a second is "load" here: the fourth unit goes to the thread.
    assert [t == main for t in threads] == [True, True, True, False]
    assert await values(db) == ["0", "1", "2", "3"]


async def test_under_write_load_an_acks_small_unit_still_runs_in_place(looped, monkeypatch):
    """Storing a transaction (``small``) is what the homeserver's next transaction waits for:
    the write rate does not send it to the thread (a trip there cost the ack 0.3-1.6 ms)."""
    db, lc = looped
    monkeypatch.setattr(sqlite_work, "BUSY_ROWS_PER_S", 2)
    threads: list[int] = []
    for k in range(4):
        await sqlite_work.run(db, insert_unit(k, str(k), threads))
    await sqlite_work.run(db, insert_unit(4, "4", threads), small=True)
    await sqlite_work.run(db, insert_unit(5, "5", threads))
    main = threading.get_ident()
    assert [t == main for t in threads] == [True, True, True, False, True, False]
    assert await values(db) == ["0", "1", "2", "3", "4", "5"]


async def test_after_a_slow_unit_even_a_small_one_goes_to_the_thread(looped, monkeypatch):
    db, lc = looped
    monkeypatch.setattr(sqlite_work, "SLOW_UNIT", 0.0)
    threads: list[int] = []
    await sqlite_work.run(db, insert_unit(1, "a", threads))
    await sqlite_work.run(db, insert_unit(2, "b", threads), small=True)
    main = threading.get_ident()
    assert threads[0] == main and threads[1] != main
    assert await values(db) == ["a", "b"]
