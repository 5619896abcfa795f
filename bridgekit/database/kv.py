"""The ``kv`` table: small named values of the runtime and the connectors (their own state,
e.g. IRC's "written" markers), written in the group commit."""

from __future__ import annotations

import asyncio

from mautrix.util.async_db import Database

from .commit import GroupCommit


class KVTable:
    """Key/value rows (see the module docstring)."""

    def __init__(self, db: Database, commit: GroupCommit) -> None:
        self.db = db
        self._enqueue_write = commit.enqueue

    async def get_kv(self, key: str) -> str | None:
        return await self.db.fetchval("SELECT value FROM kv WHERE key=$1", key)

    async def kv_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every key starting with ``prefix`` (taken literally), with its value."""
        rows = await self.db.fetch(
            "SELECT key, value FROM kv WHERE substr(key, 1, $1) = $2", len(prefix), prefix
        )
        return {r["key"]: r["value"] for r in rows}

    async def set_kv(self, key: str, value: str | None) -> None:
        """Durable when it returns; concurrent calls share one group commit (connectors call
        this per message, e.g. IRC's "written" marker, so a commit each would cost)."""
        await self.set_kv_soon(key, value)

    def set_kv_soon(self, key: str, value: str | None) -> asyncio.Future[None]:
        """:meth:`set_kv` queued at once, without waiting (:meth:`flush` waits for it)."""
        if value is None:
            return self._enqueue_write("DELETE FROM kv WHERE key=$1", (key,))
        return self._enqueue_write(
            "INSERT INTO kv (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, value),
        )
