"""SQLite: a whole unit of work at once, on the event loop's own connection when it is cheap
and safe, else in one trip to aiosqlite's thread.

aiosqlite runs every call (``BEGIN``, each statement, each fetch, each cursor close,
``COMMIT``) as its own trip to the connection's thread: a queue put, a thread wake-up, a
``call_soon_threadsafe`` back and a loop wake-up. On the benchmark machine (a VM, where waking
a sleeping thread is dear) one trip after an idle moment cost ~400 µs of CPU and back-to-back
trips ~110 µs, while the same small INSERT + COMMIT run in place cost 15-40 µs. The runtime's
hot paths (the outbox append, the group commit, the remote-id lookup, the transaction ledger)
are small units of work, so each is one function, ``work(connection)``, and :func:`run` runs it:

* in place, on a second connection owned by the event-loop thread (:class:`LoopConnection`),
  while the bridge writes little. That connection never syncs to disk (WAL with
  ``synchronous=NORMAL`` writes the log with plain ``write()``; a commit survives a kill of the
  process, which is what an ack promises), never checkpoints (checkpoints ``fsync``; they run in
  the thread) and never waits for a lock (``busy_timeout`` 0: the unit gives up untouched);
* in the thread otherwise: after such a give-up, while a checkpoint runs, for
  :data:`BUSY_BACKOFF` seconds once more than :data:`BUSY_ROWS_PER_S` rows a second are
  written, and for :data:`SLOW_BACKOFF` seconds after a unit in place took longer than
  :data:`SLOW_UNIT`.

The one exception to the write-rate rule is a unit an ack waits for (storing a transaction
from the homeserver, one row: ``small``): under write load the trip to the thread cost that ack
0.3 ms at its median on a quiet machine and 1.3-1.6 ms on a loaded one (waking a thread means
waiting for a CPU), with the homeserver's next transaction waiting for the ack; in place it
took 0.12 ms. A slow unit still sends it to the thread like the rest.

Why the last two: a plain ``write()`` can still wait. On ext4 an append waits for the running
journal commit, and a busy disk (checkpoints, other processes' fsyncs) makes those long: under
the ingest benchmark's ~7,000 rows/s, writes in place stalled the loop for 10 ms to 1 s. Under
write load the thread is awake anyway, so its trips are cheap. PostgreSQL (asyncpg) keeps the
ordinary path: its protocol already runs on the event loop.
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
#: A unit in place taking longer than this (seconds) sends units to the thread for
#: SLOW_BACKOFF seconds: the disk is busy and writes in place could stall the loop.
SLOW_UNIT = 0.02
SLOW_BACKOFF = 60.0
#: Rows written in place in one second above which units go to the thread for BUSY_BACKOFF.
BUSY_ROWS_PER_S = 1000
BUSY_BACKOFF = 10.0
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
        self.slow = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self._thread_until = 0.0
        self._slow_until = 0.0  # after a slow unit: every unit to the thread until then
        self._window_start = 0.0
        self._window_rows = 0

    def try_run(
        self, work: Callable[[sqlite3.Connection], T], small: bool = False
    ) -> tuple[bool, T | None]:
        """``(True, result)``, or ``(False, None)``: not run here (nothing done), the thread
        must take it. ``small``: a one-row unit that an ack waits for, run here also while the
        write rate sends the rest to the thread (never after a slow unit, see the module
        docstring)."""
        now = time.monotonic()
        if self._checkpoint is not None or (
            now < self._thread_until and not (small and now >= self._slow_until)
        ):
            return False, None
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
        if elapsed > SLOW_UNIT:
            # The disk is busy (a journal commit, a checkpoint's fsync): writes in place can
            # stall behind it, so the thread takes every unit for a while.
            self._thread_until = self._slow_until = now + SLOW_BACKOFF
            self.slow += 1
            log.info("A SQLite unit held the event loop for %.0f ms", elapsed * 1000)
        rows = c.total_changes - before
        if rows:
            if now - self._window_start >= 1.0:
                self._window_start, self._window_rows = now, 0
            self._window_rows += rows
            if self._window_rows > BUSY_ROWS_PER_S:
                # Under write load the thread is awake (its trips are cheap) and checkpoints
                # come often: writes in place would save little and risk stalls.
                self._thread_until = max(self._thread_until, now + BUSY_BACKOFF)
            self._writes_since_checkpoint += 1
            if self._writes_since_checkpoint >= CHECKPOINT_EVERY:
                self._writes_since_checkpoint = 0
                self._checkpoint = asyncio.create_task(self._run_checkpoint())
        return True, result

    async def _run_checkpoint(self) -> None:
        """Copy the log into the database file, in the thread (it syncs to disk)."""
        try:
            # fetchall: a cursor left unfinished would keep a statement open on the
            # connection, and its next COMMIT would fail ("SQL statements in progress").
            await in_thread(
                self.db, lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            )
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


async def run(db: Database, work: Callable[[sqlite3.Connection], T], small: bool = False) -> T:
    """Run ``work(connection)``: in place when it can, else in the pool's thread (``small``:
    see :meth:`LoopConnection.try_run`).

    Inside a connection the current task holds (``async with db.acquire()``, maybe a
    transaction) the unit always goes to that connection, so it joins the transaction."""
    lc = _loop_conns.get(db)
    if lc is not None and conn_var.get(None) is None:
        done, result = lc.try_run(work, small)
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
