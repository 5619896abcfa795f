"""SQLite: a whole unit of work in one trip to aiosqlite's thread.

aiosqlite runs every call (``BEGIN``, each statement, each fetch, each cursor close,
``COMMIT``) as its own trip to the connection's thread: a queue put, a thread wake-up, a
``call_soon_threadsafe`` back and a loop wake-up, about 65 µs of CPU each on the benchmark
machine. The hot paths of the runtime (the outbox append, the group commit, the remote-id
lookup, the transaction ledger) made ~20 such trips per bridged message. Here each of them is
one function run in the thread. PostgreSQL (asyncpg) keeps the ordinary path: its protocol
already runs on the event loop.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from mautrix.util.async_db import Database

T = TypeVar("T")

_PARAM = re.compile(r"\$(\d+)")


@lru_cache(maxsize=512)
def sql(query: str) -> str:
    """``$1`` placeholders (written once for both engines) as SQLite's ``?1``."""
    return _PARAM.sub(r"?\1", query)


async def run(db: Database, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work(connection)`` in the connection's thread, holding it for the whole unit."""
    async with db.acquire() as conn:
        raw = conn.wrapped  # mautrix's aiosqlite.Connection subclass
        return await raw._execute(work, raw._conn)


def transaction(c: sqlite3.Connection, work: Callable[[], T]) -> T:
    """``work()`` between BEGIN and COMMIT (the connection is in autocommit mode), or as
    part of the caller's transaction when one is open on this connection."""
    if c.in_transaction:
        return work()
    c.execute("BEGIN")
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
