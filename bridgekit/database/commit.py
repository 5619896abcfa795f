"""The group commit: writes queued by concurrent work share one database transaction.

Every bridged message queues its mapping here (and the transactions their "finished" mark, the
outbox its deferred deletions), so a commit costs one fsync for a burst of work instead of one
per write. The table modules queue through :meth:`GroupCommit.enqueue` (a future to await) or
:meth:`GroupCommit.enqueue_nowait` (no future: the hot path of every bridged line).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Union

from mautrix.util.async_db import Database, Scheme

from . import sqlite_work

log = logging.getLogger("bridgekit.database.store")

#: What a queued write tells when its commit is over: a waiter's future, a plain callback (a
#: write nobody awaits: called once committed or failed, with no loop turn of its own), or None.
WriteDone = Union["asyncio.Future[None]", Callable[[], None], None]
#: A queued write: (statement, arguments, what to tell when it is committed).
Write = tuple[str, tuple[Any, ...], WriteDone]


def _settle(done: WriteDone, error: BaseException | None = None) -> None:
    if done is None:
        return
    if not isinstance(done, asyncio.Future):
        done()
        return
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
        done.exception()  # retrieved: background writes have no awaiter


def _write_failed(write: Write, error: Exception) -> None:
    """A write that fails on its own: logged with its statement (never its values), and
    its waiter told."""
    log.error("A database write failed (%s ...): %s", write[0][:40], error)
    _settle(write[2], error)


def _no_riders() -> list[Write]:
    return []


class GroupCommit:
    """The queue of writes and the task that commits them (one per bridge process)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sqlite = db.scheme == Scheme.SQLITE
        self._writes: list[Write] = []
        self._write_task: asyncio.Task[None] | None = None
        #: Writes that ride on the next commit without a waiter of their own, taken at its
        #: start (the outbox's deferred deletions: :meth:`OutboxTable.outbox_done_later`).
        self.take_riders: Callable[[], list[Write]] = _no_riders

    def enqueue(self, sql: str, args: tuple[Any, ...]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.enqueue_nowait(sql, args, fut)
        return fut

    def enqueue_nowait(self, sql: str, args: tuple[Any, ...], done: WriteDone = None) -> None:
        """Queue a write nobody awaits (``done``: called after its commit, or None). No future
        per write: a future and its done-callback cost two loop turns per bridged message."""
        self._writes.append((sql, args, done))
        task = self._write_task
        if task is None or task.done():
            self._write_task = asyncio.create_task(self._flush_writes())

    async def write(self, sql: str, *args: Any) -> None:
        """Run a write in the next group commit: concurrent writers share one transaction."""
        await self.enqueue(sql, args)

    async def flush(self) -> None:
        """Wait for every queued write."""
        while self._write_task is not None and not self._write_task.done():
            await asyncio.shield(self._write_task)

    async def _flush_writes(self) -> None:
        # One loop turn first: writes queued by the same burst of work (the mappings of
        # several portals' messages, say) then share the commit instead of taking one each.
        await asyncio.sleep(0)
        while self._writes:
            batch, self._writes = self._writes, []
            writes: list[Write] = self.take_riders()
            writes.extend(batch)
            groups: list[tuple[str, list[Any]]] = []
            for query, args, _ in writes:  # consecutive writes of one statement: executemany
                if groups and groups[-1][0] == query:
                    groups[-1][1].append(args)
                else:
                    groups.append((query, [args]))
            try:
                await self._commit_groups(groups)
            except Exception as e:
                if len(writes) == 1:
                    _write_failed(writes[0], e)
                    continue
                # One bad row must not sink the others (another room's mappings, the
                # transactions' "finished" marks): each write again, in order, on its own.
                log.warning(
                    "A group commit of %d writes failed (%s); retrying them one by one",
                    len(writes),
                    e,
                )
                failed: list[str] = []
                for query, args, fut in writes:
                    try:
                        await self._commit_groups([(query, [args])])
                    except Exception as e1:
                        failed.append(f"{query[:40]} ...: {e1}")
                        _settle(fut, e1)
                    else:
                        _settle(fut)
                if failed:  # one line, however many (a full disk fails them all)
                    log.error(
                        "%d of %d writes failed (first: %s)", len(failed), len(writes), failed[0]
                    )
                continue
            for _, _, fut in batch:
                _settle(fut)

    async def _commit_groups(self, groups: list[tuple[str, list[Any]]]) -> None:
        """``executemany`` per (statement, rows) group, all in one database transaction."""
        if self._sqlite:
            await sqlite_work.run(self.db, lambda c: sqlite_work.execute_groups(c, groups))
        else:
            async with self.db.acquire() as conn, conn.transaction():
                for query, rows in groups:
                    await conn.executemany(query, rows)
