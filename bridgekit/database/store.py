"""Typed access to the runtime's tables, with in-memory caches in front of the hot lookups.

Everything that touches SQL for the runtime lives here, written once for both engines
(``$n`` placeholders, no engine-specific syntax outside ``bridgekit/database/migrations/``). Queries
never build SQL from values: lists are expanded into placeholders, never into text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Union

from mautrix.util.async_db import Database, Scheme

from ..contract.connector import LoginInfo
from ..contract.events import PortalKey
from ..matrix.appservice import TxnKey
from . import sqlite_work
from .records import (
    LRU,
    BridgeUser,
    Ghost,
    MessageRow,
    OutboxItem,
    Portal,
    ReactionRow,
    login_from_row,
    portal_from_row,
    user_from_row,
)
from .store_messages import MessageStore

__all__ = [
    "LRU", "BridgeUser", "Ghost", "MessageRow", "OutboxItem", "Portal", "ReactionRow", "Store",
]  # fmt: skip

log = logging.getLogger("bridgekit.database.store")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _affected(result: Any) -> int:
    """Rows changed by an execute, for both engines (asyncpg: 'INSERT 0 1'; sqlite: cursor)."""
    if isinstance(result, str):
        try:
            return int(result.rsplit(" ", 1)[-1])
        except ValueError:
            return 0
    return getattr(result, "rowcount", 0)


_FINISH_TXN = "UPDATE appservice_txn SET body=NULL WHERE txn_id=$1 AND digest=$2"
_TXN_DIGESTS = "SELECT digest FROM appservice_txn WHERE txn_id=$1"
_INSERT_TXN = (
    "INSERT INTO appservice_txn (txn_id, digest, body, received_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (txn_id, digest) DO NOTHING"
)
#: PostgreSQL: look-up and insert in one round trip (the outer SELECT sees the table as it was).
_STORE_TXN_PG = (
    f"WITH prior AS ({_TXN_DIGESTS}), ins AS ({_INSERT_TXN} RETURNING 1) "
    "SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM prior) AS prior"
)
#: What :meth:`Store.store_transaction` found.
TxnStored = Literal["new", "retry", "reused"]
_DELETE_OUTBOX = "DELETE FROM outbox WHERE seq=$1"
#: Longest wait of a handled outbox row's deletion for a commit to ride on (seconds).
DONE_LATER_DELAY = 1.0


#: What a queued write tells when its commit is over: a waiter's future, a plain callback (a
#: write nobody awaits: called once committed or failed, with no loop turn of its own), or None.
WriteDone = Union["asyncio.Future[None]", Callable[[], None], None]


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


def _write_failed(write: tuple[str, tuple[Any, ...], WriteDone], error: Exception) -> None:
    """A write that fails on its own: logged with its statement (never its values), and
    its waiter told."""
    log.error("A database write failed (%s ...): %s", write[0][:40], error)
    _settle(write[2], error)


class Store(MessageStore):
    """The runtime's persistence. One instance per bridge process."""

    def __init__(self, db: Database, txn_db: Database | None = None) -> None:
        self.db = db
        #: SQLite: a connection of its own for the transaction table, so acknowledging a
        #: transaction never queues behind the inbox's work on the shared connection.
        self.txn_db = txn_db or db
        self._portals: dict[tuple[str, PortalKey], Portal] = {}
        self._portals_by_mxid: dict[str, Portal] = {}
        self._users: dict[str, BridgeUser] = {}
        self.management_rooms: set[str] = set()
        self._loaded = False
        self._ghosts: dict[tuple[str, str], Ghost] = {}
        self._msg_by_event: LRU = LRU(20_000)
        #: Mappings queued but not committed yet, by (network, portal, receiver, remote id).
        self._pending_by_remote: dict[tuple[str, str, str, str], MessageRow] = {}
        self._writes: list[tuple[str, tuple[Any, ...], WriteDone]] = []
        self._write_task: asyncio.Task[None] | None = None
        #: Handled outbox rows whose deletion rides on the next commit (see outbox_done_later).
        self._done_later: list[int] = []
        self._done_timer: asyncio.TimerHandle | None = None
        self._sqlite = db.scheme == Scheme.SQLITE
        self._txn_sqlite = self.txn_db.scheme == Scheme.SQLITE

    def attach_loop_connection(self) -> None:
        """SQLite: small units of work run on the event loop's own connection (sqlite_work)."""
        if self._sqlite:
            sqlite_work.attach(self.db)
        if self._txn_sqlite and self.txn_db is not self.db:
            sqlite_work.attach(self.txn_db, share_with=self.db)

    async def detach_loop_connection(self) -> None:
        await sqlite_work.detach(self.db, self.txn_db)

    async def load(self) -> None:
        """Load portals and users into memory: from then on they are looked up without SQL
        (every Matrix event asks "is this a portal or a management room?")."""
        for row in await self.db.fetch("SELECT * FROM portal"):
            self._cache_portal(portal_from_row(row))
        for user in await self._fetch_users():
            self._remember_user(user)
        self._loaded = True

    def is_portal_room(self, room_id: str) -> bool:
        return room_id in self._portals_by_mxid

    # -- group commit ------------------------------------------------------------------------

    def _enqueue_write(self, sql: str, args: tuple[Any, ...]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue_write_nowait(sql, args, fut)
        return fut

    def _enqueue_write_nowait(
        self, sql: str, args: tuple[Any, ...], done: WriteDone = None
    ) -> None:
        """Queue a write nobody awaits (``done``: called after its commit, or None). No future
        per write: a future and its done-callback cost two loop turns per bridged message."""
        self._writes.append((sql, args, done))
        task = self._write_task
        if task is None or task.done():
            self._write_task = asyncio.create_task(self._flush_writes())

    async def _write(self, sql: str, *args: Any) -> None:
        """Run a write in the next group commit: concurrent writers share one transaction."""
        await self._enqueue_write(sql, args)

    async def flush(self) -> None:
        """Wait for every queued write, deferred deletions included (before stopping)."""
        self._commit_done_later()
        while self._write_task is not None and not self._write_task.done():
            await asyncio.shield(self._write_task)

    def _take_done_later(self) -> list[tuple[int]]:
        """The deferred outbox deletions, for the commit about to run."""
        if self._done_timer is not None:
            self._done_timer.cancel()
            self._done_timer = None
        rows, self._done_later = [(seq,) for seq in self._done_later], []
        return rows

    def _commit_done_later(self) -> None:
        """Nothing else wrote in time: the deferred deletions get a commit of their own."""
        self._done_timer = None
        if self._done_later:
            for (seq,) in self._take_done_later():
                self._enqueue_write(_DELETE_OUTBOX, (seq,))

    async def _flush_writes(self) -> None:
        # One loop turn first: writes queued by the same burst of work (the mappings of
        # several portals' messages, say) then share the commit instead of taking one each.
        await asyncio.sleep(0)
        while self._writes:
            batch, self._writes = self._writes, []
            writes: list[tuple[str, tuple[Any, ...], WriteDone]] = [
                (_DELETE_OUTBOX, row, None) for row in self._take_done_later()
            ]
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

    @property
    def is_sqlite(self) -> bool:
        return self.db.scheme == Scheme.SQLITE

    # -- transactions (the durable inbox) ------------------------------------------------

    async def store_transaction(self, txn: TxnKey, body: str | None) -> TxnStored:
        """Store a transaction: ``"retry"`` if this (txnId, digest) was already stored,
        ``"reused"`` if only its txnId was (a homeserver that restarted and numbers its
        transactions again), else ``"new"``. ``body=None`` records only the key.

        SQLite: the look-up runs before the insert, so a unit retried in the thread (the loop's
        connection was busy) gives the same answer."""
        txn_id, digest = txn
        args = (txn_id, digest, body, _now_ms())
        if self._txn_sqlite:
            select, insert = sqlite_work.sql(_TXN_DIGESTS), sqlite_work.sql(_INSERT_TXN)

            def work(c: Any) -> TxnStored:
                prior = [r[0] for r in c.execute(select, (txn_id,)).fetchall()]
                if digest in prior or c.execute(insert, args).rowcount != 1:
                    return "retry"
                return "reused" if prior else "new"

            return await sqlite_work.run(self.txn_db, work, small=True)
        row = await self.txn_db.fetchrow(_STORE_TXN_PG, *args)
        if not row["inserted"]:
            return "retry"
        return "reused" if row["prior"] else "new"

    async def finish_transactions(self, txns: Iterable[TxnKey]) -> None:
        """Mark transactions handled (no longer replayed after a restart), in the group commit.

        Everything their handling queued there (message mappings, deferred outbox deletions)
        commits first or in the same transaction, so a transaction never stops being
        replayable before what it did is durable; and a Matrix message costs one commit
        fewer than with a commit of its own for this.
        """
        futures = [self._enqueue_write(_FINISH_TXN, t) for t in txns]
        if futures:
            await asyncio.gather(*futures)

    async def pending_transactions(self) -> list[tuple[TxnKey, str]]:
        rows = await self.db.fetch(
            "SELECT txn_id, digest, body FROM appservice_txn WHERE body IS NOT NULL "
            "ORDER BY received_at, txn_id"
        )
        return [((r["txn_id"], r["digest"]), r["body"]) for r in rows]

    async def prune_transactions(self, older_than_ms: int) -> None:
        await self.db.execute(
            "DELETE FROM appservice_txn WHERE body IS NULL AND received_at < $1",
            _now_ms() - older_than_ms,
        )

    # -- outbox ----------------------------------------------------------------------------

    async def outbox_add_many(
        self, items: list[tuple[str, PortalKey, str | None, str]]
    ) -> list[int]:
        """Append events (network, portal, login, payload); returns their sequence numbers."""
        now = _now_ms()
        query = (
            "INSERT INTO outbox (network, portal_id, receiver, login_id, payload, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq"
        )
        rows = [
            (network, key.id, key.receiver, login_id, payload, now)
            for network, key, login_id, payload in items
        ]
        done = self._take_done_later()
        if self._sqlite:
            q, delete = sqlite_work.sql(query), sqlite_work.sql(_DELETE_OUTBOX)

            def work(c: Any) -> list[int]:
                def insert() -> list[int]:
                    if done:
                        c.executemany(delete, done)
                    return [c.execute(q, row).fetchone()[0] for row in rows]

                return sqlite_work.transaction(c, insert)

            return await sqlite_work.run(self.db, work)
        async with self.db.acquire() as conn, conn.transaction():
            if done:
                await conn.executemany(_DELETE_OUTBOX, done)
            return [await conn.fetchval(query, *row) for row in rows]

    async def outbox_merge(self, first: int, payload: str, rest: Sequence[int]) -> None:
        """Make a merge of outbox rows durable before it is sent: row ``first`` takes the
        merged ``payload`` and the ``rest`` go, in one commit. A replay after a crash then
        sends the same lines under the same transaction id, which the homeserver
        deduplicates; merged anew, they could differ, and lines would be lost or doubled."""
        fut = self._enqueue_write("UPDATE outbox SET payload=$1 WHERE seq=$2", (payload, first))
        for seq in rest:
            fut = self._enqueue_write(_DELETE_OUTBOX, (seq,))
        await fut  # writes commit in order, in one transaction

    def outbox_done_later(self, seqs: Iterable[int]) -> None:
        """Delete handled rows with the next commit that runs anyway (the next event's outbox
        row, a mapping), or after :data:`DONE_LATER_DELAY` if none comes: a commit of their
        own per event cost a third of the outbox's writes. Losing them in a crash is safe:
        a replayed row that was handled is recognised (its mapping exists, and its sends
        reuse their transaction ids, which the homeserver deduplicates)."""
        self._done_later.extend(seqs)
        if self._done_later and self._done_timer is None:
            loop = asyncio.get_running_loop()
            self._done_timer = loop.call_later(DONE_LATER_DELAY, self._commit_done_later)

    async def outbox_pending(self) -> list[OutboxItem]:
        rows = await self.db.fetch(
            "SELECT seq, network, portal_id, receiver, login_id, payload FROM outbox ORDER BY seq"
        )
        return [
            OutboxItem(
                r["seq"],
                r["network"],
                PortalKey(r["portal_id"], r["receiver"]),
                r["login_id"],
                r["payload"],
            )
            for r in rows
        ]

    # -- portals ---------------------------------------------------------------------------

    async def get_portal(self, network: str, key: PortalKey) -> Portal | None:
        cached = self._portals.get((network, key))
        if cached or self._loaded:
            return cached
        row = await self.db.fetchrow(
            "SELECT * FROM portal WHERE network=$1 AND remote_id=$2 AND receiver=$3",
            network,
            key.id,
            key.receiver,
        )
        return self._cache_portal(portal_from_row(row)) if row else None

    async def get_portal_by_mxid(self, mxid: str) -> Portal | None:
        cached = self._portals_by_mxid.get(mxid)
        if cached and cached.mxid == mxid:  # not a room the portal has since moved away from
            return cached
        if self._loaded:
            return None
        row = await self.db.fetchrow("SELECT * FROM portal WHERE mxid=$1", mxid)
        return self._cache_portal(portal_from_row(row)) if row else None

    def _cache_portal(self, portal: Portal) -> Portal:
        existing = self._portals.get((portal.network, portal.key))
        if existing:
            return existing
        self._portals[(portal.network, portal.key)] = portal
        if portal.mxid:
            self._portals_by_mxid[portal.mxid] = portal
        return portal

    async def all_portals(self) -> list[Portal]:
        rows = await self.db.fetch("SELECT * FROM portal WHERE mxid IS NOT NULL")
        return [self._cache_portal(portal_from_row(r)) for r in rows]

    async def save_portal(self, portal: Portal) -> None:
        await self.db.execute(
            "INSERT INTO portal (network, remote_id, receiver, mxid, name, topic, avatar_url, "
            "is_dm, plumbed, relay_login, metadata) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
            "ON CONFLICT (network, remote_id, receiver) DO UPDATE SET mxid=excluded.mxid, "
            "name=excluded.name, topic=excluded.topic, avatar_url=excluded.avatar_url, "
            "is_dm=excluded.is_dm, plumbed=excluded.plumbed, relay_login=excluded.relay_login, "
            "metadata=excluded.metadata",
            portal.network,
            portal.key.id,
            portal.key.receiver,
            portal.mxid,
            portal.name,
            portal.topic,
            portal.avatar_url,
            portal.is_dm,
            portal.plumbed,
            portal.relay_login,
            json.dumps(portal.metadata),
        )
        for mxid, cached in list(self._portals_by_mxid.items()):
            if cached is portal and mxid != portal.mxid:
                del self._portals_by_mxid[mxid]  # the portal moved to another room
        self._portals[(portal.network, portal.key)] = portal
        if portal.mxid:
            self._portals_by_mxid[portal.mxid] = portal

    async def delete_portal(self, portal: Portal) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            args = (portal.network, portal.key.id, portal.key.receiver)
            where = "network=$1 AND portal_id=$2 AND receiver=$3"
            await conn.execute(f"DELETE FROM message WHERE {where}", *args)
            await conn.execute(f"DELETE FROM message_alias WHERE {where}", *args)
            await conn.execute(f"DELETE FROM reaction WHERE {where}", *args)
            await conn.execute(
                "DELETE FROM portal WHERE network=$1 AND remote_id=$2 AND receiver=$3", *args
            )
        self._portals.pop((portal.network, portal.key), None)
        if portal.mxid:
            self._portals_by_mxid.pop(portal.mxid, None)
        self._msg_by_event.clear()

    # -- ghosts ----------------------------------------------------------------------------

    async def get_ghost(self, network: str, remote_id: str) -> Ghost | None:
        cached = self._ghosts.get((network, remote_id))
        if cached:
            return cached
        row = await self.db.fetchrow(
            "SELECT * FROM ghost WHERE network=$1 AND remote_id=$2", network, remote_id
        )
        if not row:
            return None
        ghost = Ghost(
            row["network"],
            row["remote_id"],
            row["mxid"],
            row["name"],
            row["avatar_url"],
            json.loads(row["metadata"] or "{}"),
            bool(row["is_bot"]),
        )
        self._ghosts[(network, remote_id)] = ghost
        return ghost

    async def save_ghost(self, ghost: Ghost) -> None:
        await self.db.execute(
            "INSERT INTO ghost (network, remote_id, mxid, name, avatar_url, metadata, is_bot) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (network, remote_id) DO UPDATE SET "
            "name=excluded.name, avatar_url=excluded.avatar_url, metadata=excluded.metadata, "
            "is_bot=excluded.is_bot",
            ghost.network,
            ghost.remote_id,
            ghost.mxid,
            ghost.name,
            ghost.avatar_url,
            json.dumps(ghost.metadata),
            ghost.is_bot,
        )
        self._ghosts[(ghost.network, ghost.remote_id)] = ghost

    async def get_avatar(self, digest: str) -> str | None:
        """The mxc:// URI an image with this SHA-256 was uploaded as, if it was."""
        return await self.db.fetchval("SELECT mxc FROM avatar WHERE hash=$1", digest)

    async def save_avatar(self, digest: str, mxc: str) -> None:
        await self.db.execute(
            "INSERT INTO avatar (hash, mxc, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (hash) DO NOTHING",
            digest,
            mxc,
            int(time.time() * 1000),
        )

    # -- users and logins ------------------------------------------------------------------

    async def get_user(self, mxid: str) -> BridgeUser | None:
        cached = self._users.get(mxid)
        if cached or self._loaded:
            return cached
        row = await self.db.fetchrow("SELECT * FROM bridge_user WHERE mxid=$1", mxid)
        return self._remember_user(user_from_row(row)) if row else None

    async def _fetch_users(self) -> list[BridgeUser]:
        return [user_from_row(r) for r in await self.db.fetch("SELECT * FROM bridge_user")]

    async def all_users(self) -> list[BridgeUser]:
        if self._loaded:
            return list(self._users.values())
        return await self._fetch_users()

    def _remember_user(self, user: BridgeUser) -> BridgeUser:
        old = self._users.get(user.mxid)
        if old and old.management_room:
            self.management_rooms.discard(old.management_room)
        self._users[user.mxid] = user
        if user.management_room:
            self.management_rooms.add(user.management_room)
        return user

    async def save_user(self, user: BridgeUser) -> None:
        await self.db.execute(
            "INSERT INTO bridge_user (mxid, management_room, double_puppet, metadata) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (mxid) DO UPDATE SET "
            "management_room=excluded.management_room, double_puppet=excluded.double_puppet, "
            "metadata=excluded.metadata",
            user.mxid,
            user.management_room,
            user.double_puppet,
            json.dumps(user.metadata),
        )
        self._remember_user(user)

    async def save_login(self, login: LoginInfo) -> None:
        await self.db.execute(
            "INSERT INTO user_login (id, user_mxid, network, remote_id, remote_name, metadata, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
            "remote_name=excluded.remote_name, metadata=excluded.metadata",
            login.id,
            login.user_mxid,
            login.network,
            login.remote_id,
            login.remote_name,
            json.dumps(login.metadata),
            _now_ms(),
        )

    async def delete_login(self, login_id: str) -> None:
        await self.db.execute("DELETE FROM user_login WHERE id=$1", login_id)

    async def logins(self, user_mxid: str | None = None) -> list[LoginInfo]:
        if user_mxid is None:
            rows = await self.db.fetch("SELECT * FROM user_login ORDER BY created_at, id")
        else:
            rows = await self.db.fetch(
                "SELECT * FROM user_login WHERE user_mxid=$1 ORDER BY created_at, id", user_mxid
            )
        return [login_from_row(r) for r in rows]

    # -- key/value -------------------------------------------------------------------------

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
