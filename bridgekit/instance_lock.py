"""One bridge process per database.

Two processes on one database (a second copy started by hand beside the service, a unit
restarted while the old process still drains) would both replay the stored transactions and
the outbox, both connect every login, and send the same messages twice: IRC has no
deduplication. So a bridge holds a lock for as long as it runs, taken right after the database
opens and before anything is replayed or connected, and a second process stops with a clear
message instead.

* SQLite: ``flock`` on ``<database file>.lock`` (a file of its own: SQLite's own byte-range
  locks on the database file must not be disturbed).
* PostgreSQL: a session-level advisory lock, on a connection held for the bridge's life.

The kernel drops the ``flock`` and PostgreSQL the advisory lock when the process dies, even
by ``kill -9``, so a crash never leaves the database locked.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from typing import IO, Any

from mautrix.util.async_db import Database

from .database.db import DatabaseUnavailable

log = logging.getLogger("bridgekit.db")

#: The advisory lock's key: the first 8 bytes of ``bridgekit`` in ASCII, as a 64-bit integer.
ADVISORY_KEY = int.from_bytes(b"bridgekit"[:8], "big")


class DatabaseInUse(DatabaseUnavailable):
    """Another bridge process holds the database."""


class InstanceLock:
    """The lock, taken by :meth:`acquire` and given back by :meth:`release`."""

    def __init__(self) -> None:
        self._file: IO[Any] | None = None
        self._holder: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    async def acquire(self, db: Database, real_url: str, shown_url: str) -> None:
        """Take the lock, or raise :class:`DatabaseInUse`. ``real_url`` is the mautrix URL
        (``sqlite:path`` or ``postgres://...``); ``shown_url`` the one for messages."""
        if real_url.startswith("sqlite:"):
            path = real_url[len("sqlite:") :].split("?", 1)[0]
            if not path or path == ":memory:":
                return  # a private in-memory database: nobody else can open it
            fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            f = os.fdopen(fd, "r+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                raise DatabaseInUse(_in_use(shown_url)) from None
            self._file = f
            return
        # A task of its own holds the connection: mautrix's ``acquire`` makes the connection
        # the current context's, and everything the bridge starts from here would share it.
        taken: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._done.clear()

        async def hold() -> None:
            async with db.acquire() as conn:
                got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)
                taken.set_result(bool(got))
                if got:
                    await self._done.wait()
                    await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_KEY)

        def ended(task: asyncio.Task[None]) -> None:  # before answering: it failed
            if taken.done():
                return
            if task.cancelled():
                taken.cancel()
            else:
                taken.set_exception(task.exception() or RuntimeError("lock not taken"))

        holder = asyncio.create_task(hold(), name="bridgekit-instance-lock")
        holder.add_done_callback(ended)
        if not await taken:
            await holder
            raise DatabaseInUse(_in_use(shown_url))
        self._holder = holder

    async def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._holder is not None:
            holder, self._holder = self._holder, None
            self._done.set()
            try:
                await holder
            except Exception as e:  # the connection is gone: so is its lock
                log.warning("Could not release the database lock cleanly: %s", e)


def _in_use(url: str) -> str:
    return (
        f"another bridgekit process is running on the database {url} (database.url); stop it "
        "first. Two at once would send everything twice."
    )
