"""bridgekit: a framework for Matrix application-service bridges."""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def _import_mautrix_without_optional_extras() -> None:
    """Import the mautrix modules that load optional libraries eagerly, with those hidden.

    * ``mautrix.util.async_db`` imports asyncpg (and registers the ``postgres`` scheme) when
      it is imported, so a bridge on SQLite paid about 3.5 MiB of RSS for a driver it never
      calls. :func:`bridgekit.database.db.create_database` imports the backend for a PostgreSQL URL.
    * ``mautrix.util.opt_prometheus`` binds prometheus_client's metric classes (about 1 MiB)
      for counters in prometheus_client's global registry, which bridgekit never serves
      (:mod:`bridgekit.metrics` has its own, and imports the library only when scraped).
      Hidden, mautrix falls back to its no-op counters.

    mautrix treats both as optional imports. Whatever was imported before bridgekit is left
    as it is.
    """
    hidden = [
        name
        for name, importer in (
            ("asyncpg", "mautrix.util.async_db"),
            ("prometheus_client", "mautrix.util.opt_prometheus"),
        )
        if name not in sys.modules and importer not in sys.modules
    ]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import mautrix.util.async_db  # noqa: F401
        import mautrix.util.opt_prometheus  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


_import_mautrix_without_optional_extras()
