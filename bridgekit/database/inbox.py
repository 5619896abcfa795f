"""SQLite: the homeserver's transactions in a file of their own beside the database
(``bridge.db`` -> ``bridge.inbox.db``).

Why: Synapse sends one transaction at a time and waits for its 200, and the 200 waits for the
transaction to be stored. In the main file that insert waits for SQLite's one write lock while
the group commit of the previous transaction's message mappings holds it (in aiosqlite's thread,
where it may wait for the GIL: 7-9 ms under load). With a file, and so a write lock, of its own
the insert runs at once on the event loop's connection (bench/README.md: ingest).

The "finished" marks stay in the main database (:mod:`.transactions`), in the same commit as
what the handling wrote. Losing this file loses the transactions acknowledged but not yet
handled, and the keys that recognise a homeserver's retries. PostgreSQL and in-memory SQLite
keep the transactions in the main database.
"""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import Any

from mautrix.util.async_db import Database
from yarl import URL

from . import sqlite_work
from .db import make_url, migrate, open_database, package_migrations

log = logging.getLogger("bridgekit.database.inbox")

#: The inbox file's schema (its version table: ``bridgekit_inbox_version``).
INBOX_SCHEMA = "bridgekit_inbox"
_COPY = (
    "INSERT INTO appservice_txn (txn_id, digest, body, received_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (txn_id, digest) DO NOTHING"
)


def inbox_url(url: str) -> str | None:
    """The inbox file's URL for a SQLite ``database.url`` (its name with ``.inbox`` before the
    extension); None for PostgreSQL and in-memory SQLite (one database holds everything)."""
    real = make_url(url)
    if not real.startswith(("sqlite:", "sqlite3:")):
        return None
    path = URL(real).path
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    p = PurePath(path)
    name = f"{p.stem}.inbox{p.suffix}" if p.suffix else f"{p.name}.inbox"
    return f"sqlite:{p.with_name(name)}"


async def open_inbox(inbox: Database, url: str, main: Database) -> None:
    """Open the inbox file (created if missing), bring its schema up to date and move into it
    the transactions a previous version stored in the main database."""
    await open_database(inbox, url)
    await migrate(inbox, INBOX_SCHEMA, package_migrations("bridgekit.database.inbox_migrations"))
    await move_from_main(main, inbox)


async def move_from_main(main: Database, inbox: Database) -> int:
    """Upgrade from one file: the rows of the main database's ``appservice_txn`` (pending
    ones are replayed after the start, finished ones still recognise retries) are copied to
    the inbox, then deleted from the main file. A crash in between copies them again at the
    next start (a key already in the inbox is kept). Returns how many moved."""
    rows = [
        tuple(r)
        for r in await main.fetch("SELECT txn_id, digest, body, received_at FROM appservice_txn")
    ]
    if not rows:
        return 0

    def copy(c: Any) -> None:
        sqlite_work.execute_groups(c, [(_COPY, rows)])

    await sqlite_work.in_thread(inbox, copy)
    await main.execute("DELETE FROM appservice_txn")
    log.info("Moved %d transactions from the database to the inbox file", len(rows))
    return len(rows)
