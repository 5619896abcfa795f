"""bridgekit: a framework for Matrix application-service bridges."""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def _import_async_db_without_asyncpg() -> None:
    """Import mautrix's ``async_db`` with its PostgreSQL backend left out, to be loaded on demand.

    ``mautrix.util.async_db`` imports asyncpg (and registers the ``postgres`` scheme) when it
    is imported, so a bridge on SQLite paid about 3.5 MiB of RSS for a driver it never calls.
    Here the package is imported while asyncpg is hidden, which mautrix tolerates (its backends
    are optional imports); :func:`bridgekit.db.create_database` imports the backend module for a
    PostgreSQL URL. If something imported ``async_db`` before bridgekit, nothing changes.
    """
    if "mautrix.util.async_db" in sys.modules or "asyncpg" in sys.modules:
        return
    sys.modules["asyncpg"] = None  # type: ignore[assignment]  # makes `import asyncpg` fail
    try:
        import mautrix.util.async_db  # noqa: F401
    finally:
        del sys.modules["asyncpg"]


_import_async_db_without_asyncpg()
