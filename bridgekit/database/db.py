"""Database access: SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg) behind one API.

The connection handling is mautrix's ``async_db`` (``$1`` placeholders work on both engines).
What bridgekit adds is schema management from plain, versioned SQL files:
``bridgekit/database/migrations/NNN_*.sql`` for the runtime and ``<connector
package>/migrations/NNN_*.sql`` for each connector, each with its own version table, applied in a
transaction at start. A database whose schema is newer than the code is refused instead of being
half-understood.

Inside a migration file, lines between ``-- only: sqlite`` (or ``postgres``) and
``-- end only`` run on that engine alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from mautrix.util.async_db import Database, Scheme, UpgradeTable
from mautrix.util.async_db.errors import UnsupportedDatabaseVersion

log = logging.getLogger("bridgekit.db")

_FILE_RE = re.compile(r"^(\d+)_([\w\-]+)\.sql$")
_ONLY_RE = re.compile(r"^\s*--\s*only:\s*(sqlite|postgres)\s*$", re.IGNORECASE)
_END_RE = re.compile(r"^\s*--\s*end only\s*$", re.IGNORECASE)


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer bridgekit; running would risk corrupting it."""


class DatabaseUnavailable(RuntimeError):
    """The database in ``database.url`` cannot be opened (said plainly, password hidden)."""


class DatabaseLock(Protocol):
    """What :func:`open_database` takes the database with (:class:`bridgekit.instance_lock.
    InstanceLock`, which needs this module's errors: declared here, not imported, so the two
    modules do not import each other)."""

    async def acquire(self, db: Database, real_url: str, shown_url: str) -> None: ...


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    return re.sub(r"^([a-z0-9+.-]+://[^:/@]*):[^@/]*@", r"\1:***@", url, flags=re.IGNORECASE)


async def open_database(db: Database, url: str, lock: DatabaseLock | None = None) -> None:
    """Start ``db``; a failure (server down, wrong password, unwritable file) becomes one
    :class:`DatabaseUnavailable` that names the URL, rather than a driver's stack trace.
    With ``lock``, also take the database for this process alone (see
    :mod:`bridgekit.instance_lock`), or stop it again and raise ``DatabaseInUse``."""
    threads_before = set(threading.enumerate())
    try:
        await db.start()
    except Exception as e:  # OSError, asyncpg's and sqlite3's errors, timeouts
        await _let_sqlite_threads_finish(threads_before)
        reason = str(e) or type(e).__name__
        raise DatabaseUnavailable(
            f"cannot open the database {redact_url(url)} (database.url): {reason}"
        ) from e
    if lock is not None:
        try:
            await lock.acquire(db, make_url(url), redact_url(url))
        except BaseException:
            await db.stop()
            raise


async def _let_sqlite_threads_finish(before: set[threading.Thread], timeout: float = 2.0) -> None:
    """Wait for the worker threads a failed SQLite open started to end.

    aiosqlite closes a connection that failed to open in its thread and reports that back to
    this event loop. When the caller exits right away (``bridgekit migrate``), the loop is
    closed first and the thread prints a ``RuntimeError`` traceback under the clear message.
    Only threads started since ``before`` are waited for; the loop stays free meanwhile."""
    for thread in set(threading.enumerate()) - before:
        if "_connection_worker_thread" in thread.name:  # aiosqlite's, named after its target
            await asyncio.to_thread(thread.join, timeout)


@dataclass
class Migration:
    version: int
    name: str
    sql: str

    def for_scheme(self, scheme: Scheme) -> str:
        engine = "sqlite" if scheme == Scheme.SQLITE else "postgres"
        out: list[str] = []
        only: str | None = None
        for line in self.sql.splitlines():
            m = _ONLY_RE.match(line)
            if m:
                only = m.group(1).lower()
                continue
            if _END_RE.match(line):
                only = None
                continue
            if only is None or only == engine:
                out.append(line)
        return "\n".join(out)


def load_migrations(files: Iterable[Traversable | Path]) -> list[Migration]:
    found: list[Migration] = []
    for f in files:
        m = _FILE_RE.match(f.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), f.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise ValueError(f"migration versions must be 1..N without gaps; got {mig.version}")
    return found


def package_migrations(package: str) -> list[Migration]:
    """Migrations shipped as ``*.sql`` files inside ``package`` (e.g.
    ``bridgekit.database.migrations``)."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        return []
    return load_migrations(p for p in root.iterdir() if p.name.endswith(".sql"))


def _split_statements(sql: str) -> list[str]:
    """Split on ``;`` at line ends (our migrations never put ``;`` inside literals)."""
    parts, buf = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        buf.append(line)
        if stripped.endswith(";"):
            parts.append("\n".join(buf))
            buf = []
    if buf:
        parts.append("\n".join(buf))
    return parts


def upgrade_table_for(name: str, migrations: list[Migration]) -> UpgradeTable:
    table = UpgradeTable(version_table_name=f"{name}_version", database_name=name, log=log)
    for mig in migrations:

        async def upgrade(conn: Any, scheme: Scheme, _mig: Migration = mig) -> None:
            for stmt in _split_statements(_mig.for_scheme(scheme)):
                await conn.execute(stmt)

        table.register(upgrade, description=mig.name)
    return table


def make_url(url: str) -> str:
    """Accept SQLAlchemy-style ``sqlite:///rel.db`` / ``sqlite:////abs.db`` and postgres URLs."""
    if url.startswith(("sqlite://", "sqlite3://")):
        path = url.split("://", 1)[1]
        path = path[1:] if path.startswith("/") else path
        return f"sqlite:{path}"
    if url.startswith("postgresql://"):
        return "postgres://" + url[len("postgresql://") :]
    return url


def create_database(url: str, *, max_connections: int = 10) -> Database:
    real = make_url(url)
    if real.startswith("sqlite:"):
        from .sqlite_txn import use_immediate_transactions

        use_immediate_transactions()  # see sqlite_txn.py: no read-to-write upgrade to fail
        args: dict[str, Any] = {
            "min_size": 1,
            "init_commands": [
                "PRAGMA journal_mode = WAL",
                # NORMAL in WAL mode survives a crash of the process (what an ack promises);
                # set database.synchronous: FULL to survive power loss too.
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 5000",
            ],
        }
    else:
        args = {"min_size": 1, "max_size": max_connections}
        # Registers the postgres scheme; bridgekit/__init__.py keeps it (and asyncpg) unloaded
        # until a PostgreSQL database is asked for.
        import mautrix.util.async_db.asyncpg  # noqa: F401
    return Database.create(real, db_args=args, upgrade_table=UpgradeTable(), log=log)


async def current_version(db: Database, name: str) -> int:
    if not await db.table_exists(f"{name}_version"):
        return 0
    return await db.fetchval(f"SELECT version FROM {name}_version LIMIT 1") or 0


async def migrate(db: Database, name: str, migrations: list[Migration]) -> int:
    """Apply pending migrations of one schema; return the resulting version."""
    table = upgrade_table_for(name, migrations)
    try:
        await table.upgrade(db)
    except UnsupportedDatabaseVersion as e:
        raise SchemaTooNewError(
            f"the {name} schema in the database is v{await current_version(db, name)} but this "
            f"bridgekit knows only up to v{len(migrations)}: upgrade bridgekit"
        ) from e
    return await current_version(db, name)
