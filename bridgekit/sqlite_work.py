"""SQLite: a whole unit of work at once, on the event loop's own connection when it can be.

aiosqlite runs every call (``BEGIN``, each statement, each fetch, each cursor close,
``COMMIT``) as its own trip to the connection's thread: a queue put, a thread wake-up, a
``call_soon_threadsafe`` back and a loop wake-up. On the benchmark machine (a VM, where
waking a sleeping thread is dear) one trip after an idle moment cost ~400 µs of CPU and
back-to-back trips ~110 µs, while the same small INSERT + COMMIT run in place cost 15-40 µs.
The runtime's hot paths (the outbox append, the group commit, the remote-id lookup, the
transaction ledger) are small units of work, so each is one function, ``work(connection)``,
and :func:`run` runs it:

* on a second connection owned by the event-loop thread (:class:`LoopConnection`), when the
  database has one. That connection never waits: it never syncs to disk (WAL with
  ``synchronous=NORMAL`` writes the log with plain ``write()``; a commit survives a kill of
  the process, which is what an ack promises), it does no checkpoints (those, which do
  ``fsync``, run in aiosqlite's thread), and its ``busy_timeout`` is 0, so if another
  connection holds the write lock the unit gives up at once, untouched;
* else, or after such a give-up, in aiosqlite's thread, as one trip.

Units that run in place are single-row statements by key, which stay in SQLite's page cache;
one taking longer than :data:`SLOW_UNIT` is logged. PostgreSQL (asyncpg) keeps the ordinary
path: its protocol already runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
import weakref
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from mautrix.util.async_db import Database
from mautrix.util.async_db.database import conn_var

T = TypeVar("T")

log = logging.getLogger("bridgekit.sqlite")

_PARAM = re.compile(r"\$(\d+)")
#: Units of work that wrote, between two checkpoints run in the thread.
CHECKPOINT_EVERY = 256
#: A unit in place taking longer than this (seconds) is logged: it held the event loop.
SLOW_UNIT = 0.05
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


@lru_cache(maxsize=512)
def sql(query: str) -> str:
    """``$1`` placeholders (written once for both engines) as SQLite's ``?1``."""
    return _PARAM.sub(r"?\1", query)


class LoopConnection:
    """The event-loop thread's own connection to a SQLite file (see the module docstring)."""

    def __init__(self, db: Database, path: str) -> None:
        self.db = db  # the aiosqlite pool that checkpoints and takes over after a give-up
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        for pragma in (
            "synchronous = NORMAL",
            "foreign_keys = ON",
            "busy_timeout = 0",
            "wal_autocheckpoint = 0",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
        #: Only in WAL mode is a commit free of fsync; otherwise every unit goes to the thread.
        self.usable = str(mode).lower() == "wal"
        self.units = 0
        self.gave_up = 0
        self._writes_since_checkpoint = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self._slow_logged = 0.0

    def try_run(self, work: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """``(True, result)``, or ``(False, None)`` when the database was busy (nothing done)."""
        c = self.conn
        before = c.total_changes
        start = time.perf_counter()
        try:
            result = work(c)
        except BaseException as e:
            if c.in_transaction:
                c.execute("ROLLBACK")
            code = getattr(e, "sqlite_errorcode", 0) & 0xFF
            if isinstance(e, sqlite3.OperationalError) and code in _BUSY:
                self.gave_up += 1
                return False, None
            raise
        elapsed = time.perf_counter() - start
        self.units += 1
        if elapsed > SLOW_UNIT and start - self._slow_logged > 60:
            self._slow_logged = start
            log.warning("A SQLite unit of work held the event loop for %.0f ms", elapsed * 1000)
        if c.total_changes != before:
            self._writes_since_checkpoint += 1
            if self._writes_since_checkpoint >= CHECKPOINT_EVERY and self._checkpoint is None:
                self._writes_since_checkpoint = 0
                self._checkpoint = asyncio.create_task(self._run_checkpoint())
        return True, result

    async def _run_checkpoint(self) -> None:
        """Copy the log into the database file, in the thread (it syncs to disk)."""
        try:
            await in_thread(self.db, lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)"))
        except Exception:
            log.exception("SQLite checkpoint failed")
        finally:
            self._checkpoint = None

    async def close(self) -> None:
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        self.conn.close()


_loop_conns: weakref.WeakKeyDictionary[Database, LoopConnection] = weakref.WeakKeyDictionary()


def attach(db: Database, share_with: Database | None = None) -> LoopConnection | None:
    """Give a started SQLite pool its event-loop connection (or the one of ``share_with``,
    another pool on the same file). None for other engines and non-WAL files."""
    existing = _loop_conns.get(share_with) if share_with is not None else None
    if existing is None:
        path = getattr(db, "_path", None)
        if not path or path == ":memory:":
            return None
        existing = LoopConnection(db, path)
        if not existing.usable:
            existing.conn.close()
            return None
    _loop_conns[db] = existing
    return existing


async def detach(*dbs: Database) -> None:
    """Close the event-loop connection of these pools (before the pools stop)."""
    closed: set[int] = set()
    for db in dbs:
        lc = _loop_conns.pop(db, None)
        if lc is not None and id(lc) not in closed:
            closed.add(id(lc))
            await lc.close()


def loop_connection(db: Database) -> LoopConnection | None:
    return _loop_conns.get(db)


async def run(db: Database, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work(connection)``: in place when it can, else in the pool's thread.

    Inside a connection the current task holds (``async with db.acquire()``, maybe a
    transaction) the unit always goes to that connection, so it joins the transaction."""
    lc = _loop_conns.get(db)
    if lc is not None and conn_var.get(None) is None:
        done, result = lc.try_run(work)
        if done:
            return result  # type: ignore[return-value]
    return await in_thread(db, work)


async def in_thread(db: Database, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work(connection)`` in the pool connection's thread, holding it for the unit."""
    async with db.acquire() as conn:
        raw = conn.wrapped  # mautrix's aiosqlite.Connection subclass
        return await raw._execute(work, raw._conn)


def transaction(c: sqlite3.Connection, work: Callable[[], T]) -> T:
    """``work()`` between BEGIN IMMEDIATE and COMMIT (the connection is in autocommit
    mode), or as part of the caller's transaction when one is open on this connection.

    IMMEDIATE takes the write lock first, so a busy database is found before any work."""
    if c.in_transaction:
        return work()
    c.execute("BEGIN IMMEDIATE")
    try:
        result = work()
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return result


def execute_groups(c: sqlite3.Connection, groups: Sequence[tuple[str, list[Any]]]) -> None:
    """``executemany`` per (statement, rows) group, all in one transaction."""

    def work() -> None:
        for query, rows in groups:
            c.executemany(sql(query), rows)

    transaction(c, work)
