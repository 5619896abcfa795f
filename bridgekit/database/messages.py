"""The ``message``, ``message_alias`` and ``reaction`` tables: which Matrix event is which
remote message or reaction.

Lookups by remote id sit on the hot path of every bridged line (echo and duplicate detection),
so SQLite runs them in place (:mod:`bridgekit.database.sqlite_work`); mappings are written in the
group commit (:mod:`bridgekit.database.commit`) and found in memory until it is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from mautrix.util.async_db import Database, Scheme

from ..contract.events import PortalKey
from . import sqlite_work
from .commit import GroupCommit
from .records import (
    LRU,
    MessageRow,
    PortalRow,
    ReactionRow,
    message_from_row,
    reaction_from_row,
)


def _unpend(pending: dict[Any, MessageRow], key: Any, msg: MessageRow) -> None:
    """A committed mapping leaves the pending index (unless a newer one took its key)."""
    if pending.get(key) is msg:
        del pending[key]


def _unpend_all(pending: dict[Any, MessageRow], keys: list[Any], msg: MessageRow) -> None:
    for key in keys:
        _unpend(pending, key, msg)


def _call(done: Callable[[], None], _: Any) -> None:
    done()


class MessageTable:
    """Message, alias and reaction rows (see the module docstring)."""

    def __init__(self, db: Database, commit: GroupCommit) -> None:
        self.db = db
        self._sqlite = db.scheme == Scheme.SQLITE
        self._enqueue_write = commit.enqueue
        self._enqueue_write_nowait = commit.enqueue_nowait
        self._flush_writes = commit.flush
        self._msg_by_event: LRU = LRU(20_000)
        #: Mappings queued but not committed yet, by (network, portal, receiver, remote id).
        self._pending_by_remote: dict[tuple[str, str, str, str], MessageRow] = {}

    _INSERT_MESSAGE = (
        "INSERT INTO message (network, portal_id, receiver, remote_id, part, event_id, "
        "room_id, sender_mxid, sender_remote, ts, thread_root) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT DO NOTHING"
    )

    _INSERT_ALIAS = (
        "INSERT INTO message_alias (network, portal_id, receiver, remote_id, event_id) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
    )

    def _queue_message(
        self, msg: MessageRow, extra_ids: Iterable[str], wait: bool = True
    ) -> asyncio.Future[None] | None:
        """Queue the mapping's writes; the future of the last one with ``wait`` (they commit
        in order: the last one done means all are), else None and no future at all.

        Written for the hot path (every bridged Matrix message): fields read once, no list
        per write, and one ``partial`` instead of a closure and its cells."""
        event_id, remote_id, network = msg.event_id, msg.remote_id, msg.network
        portal_id, receiver = msg.portal.id, msg.portal.receiver
        self._msg_by_event.put(event_id, msg)
        args = (
            network, portal_id, receiver, remote_id, msg.part, event_id, msg.room_id,
            msg.sender_mxid, msg.sender_remote, msg.ts, msg.thread_root,
        )  # fmt: skip
        extra = [r for r in extra_ids if r and r != remote_id]
        committed: Callable[[], None] | None = None
        if msg.part == "":
            # Until the commit, lookups by remote id find it here: a reaction or reply from
            # the network can follow our own line faster than the group commit (a bot that
            # reacts to every message, read in the same batch as our line's echo).
            pending = self._pending_by_remote
            key = (network, portal_id, receiver, remote_id)
            pending[key] = msg
            if extra:
                keys = [key, *((network, portal_id, receiver, r) for r in extra)]
                for k in keys[1:]:
                    pending[k] = msg
                committed = partial(_unpend_all, pending, keys, msg)
            else:
                committed = partial(_unpend, pending, key, msg)
        sql = self._INSERT_MESSAGE
        if extra:  # the message row first, its aliases after: the last write tells for all
            enqueue = self._enqueue_write_nowait
            enqueue(sql, args)
            for r in extra[:-1]:
                enqueue(self._INSERT_ALIAS, (network, portal_id, receiver, r, event_id))
            sql, args = self._INSERT_ALIAS, (network, portal_id, receiver, extra[-1], event_id)
        if not wait:
            self._enqueue_write_nowait(sql, args, committed)
            return None
        fut = self._enqueue_write(sql, args)
        if committed is not None:
            fut.add_done_callback(partial(_call, committed))
        return fut

    async def add_message(self, msg: MessageRow, extra_ids: Iterable[str] = ()) -> None:
        """Map a Matrix event to its remote id, and to ``extra_ids`` (the other remote ids
        the same event stands for: split lines, merged lines)."""
        fut = self._queue_message(msg, extra_ids)
        assert fut is not None  # wait=True
        await fut

    def add_message_soon(self, msg: MessageRow, extra_ids: Iterable[str] = ()) -> None:
        """Record a mapping without waiting for the commit (it is visible at once to
        lookups by event id through the cache; :meth:`flush` waits for it)."""
        self._queue_message(msg, extra_ids, wait=False)

    async def message_by_remote(
        self, network: str, portal: PortalKey, remote_id: str, part: str | None = None
    ) -> MessageRow | None:
        """The message bridged for a remote id (its first part unless ``part`` is given)."""
        key = (network, portal.id, portal.receiver, remote_id)
        if part is None:
            if (queued := self._pending_by_remote.get(key)) is not None:
                return queued
            queries = [(self._BY_REMOTE, key), (self._BY_ALIAS, key)]
        else:
            queries = [(self._BY_REMOTE_PART, (*key, part))]
        row = None
        if self._sqlite:
            compiled = [(sqlite_work.sql(q), args) for q, args in queries]

            def work(c: Any) -> Any:
                for q, args in compiled:
                    found = c.execute(q, args).fetchone()
                    if found is not None:
                        return found
                return None

            row = await sqlite_work.run(self.db, work)
        else:
            for q, args in queries:
                if (row := await self.db.fetchrow(q, *args)) is not None:
                    break
        return message_from_row(row) if row else None

    async def known_remote_ids(
        self, network: str, portal: PortalKey, remote_ids: Sequence[str]
    ) -> set[str]:
        """Which of these remote ids already have a bridged message (as its id or an alias):
        one query for a whole batch of lines, where :meth:`message_by_remote` takes two
        per line. A message in parts counts once its first part is recorded, which is done
        last (:mod:`bridgekit.portal.message_parts`)."""
        ids = list(dict.fromkeys(i for i in remote_ids if i))
        if not ids:
            return set()
        key = (network, portal.id, portal.receiver)
        queued = {i for i in ids if (*key, i) in self._pending_by_remote}
        if self._sqlite:
            marks = ",".join(f"${n}" for n in range(4, 4 + len(ids)))
            q = sqlite_work.sql(
                "SELECT remote_id FROM message WHERE network=$1 AND portal_id=$2 "
                f"AND receiver=$3 AND remote_id IN ({marks}) AND part='' UNION SELECT remote_id "
                "FROM message_alias WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
                f"AND remote_id IN ({marks})"
            )
            args = (*key, *ids)

            def work(c: Any) -> set[str]:
                return {row[0] for row in c.execute(q, args)}

            return queued | await sqlite_work.run(self.db, work)
        rows = await self.db.fetch(
            "SELECT remote_id FROM message WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
            "AND remote_id = ANY($4::text[]) AND part='' UNION SELECT remote_id FROM message_alias "
            "WHERE network=$1 AND portal_id=$2 AND receiver=$3 AND remote_id = ANY($4::text[])",
            *key,
            ids,
        )
        return queued | {row["remote_id"] for row in rows}

    _BY_REMOTE = (
        "SELECT * FROM message WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
        "AND remote_id=$4 ORDER BY part LIMIT 1"
    )
    _BY_REMOTE_PART = (
        "SELECT * FROM message WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
        "AND remote_id=$4 AND part=$5"
    )
    _BY_ALIAS = (
        "SELECT m.* FROM message_alias a JOIN message m ON m.event_id=a.event_id "
        "WHERE a.network=$1 AND a.portal_id=$2 AND a.receiver=$3 AND a.remote_id=$4"
    )

    async def message_parts(
        self, network: str, portal: PortalKey, remote_id: str
    ) -> list[MessageRow]:
        """Every recorded part of a remote message (a message not in parts has one)."""
        rows = await self.db.fetch(
            "SELECT * FROM message WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
            "AND remote_id=$4",
            network,
            portal.id,
            portal.receiver,
            remote_id,
        )
        return [message_from_row(row) for row in rows]

    async def message_by_event(self, event_id: str) -> MessageRow | None:
        cached = self._msg_by_event.get(event_id)
        if cached:
            return cached
        row = await self.db.fetchrow("SELECT * FROM message WHERE event_id=$1", event_id)
        if not row:
            return None
        msg = message_from_row(row)
        self._msg_by_event.put(event_id, msg)
        return msg

    async def message_in_portal(
        self, network: str, portal: PortalKey, event_id: str
    ) -> MessageRow | None:
        """The message bridged as ``event_id`` if it belongs to this portal, else None
        (event ids are global: a relation may name another room's event)."""
        msg = await self.message_by_event(event_id)
        if msg is None or msg.network != network or msg.portal != portal:
            return None
        return msg

    async def last_message(self, network: str, portal: PortalKey) -> MessageRow | None:
        row = await self.db.fetchrow(
            "SELECT * FROM message WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
            "ORDER BY ts DESC LIMIT 1",
            network,
            portal.id,
            portal.receiver,
        )
        return message_from_row(row) if row else None

    async def last_remote_message(self, network: str, portal: PortalKey) -> str | None:
        """Newest remote id in a portal that came from the network (for catching up). A
        mapping of that portal still queued for the group commit is waited for: a catch-up
        anchored before the message just bridged would fetch it again."""
        if any(
            k[0] == network and k[1] == portal.id and k[2] == portal.receiver
            for k in self._pending_by_remote
        ):
            await self._flush_writes()
        return await self.db.fetchval(
            "SELECT remote_id FROM message WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
            "AND remote_id NOT LIKE 'mx:%' "
            "AND remote_id NOT LIKE 'noid:%' ORDER BY ts DESC, remote_id DESC LIMIT 1",
            network,
            portal.id,
            portal.receiver,
        )

    async def delete_message(self, event_id: str) -> None:
        await self.db.execute("DELETE FROM message WHERE event_id=$1", event_id)
        await self.db.execute("DELETE FROM message_alias WHERE event_id=$1", event_id)
        self._msg_by_event.pop(event_id, None)

    async def add_reaction(self, r: ReactionRow) -> None:
        await self.db.execute(
            "INSERT INTO reaction (network, portal_id, receiver, target_id, sender_remote, "
            "reaction_key, event_id, room_id, remote_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            r.network,
            r.portal.id,
            r.portal.receiver,
            r.target_id,
            r.sender_remote,
            r.key,
            r.event_id,
            r.room_id,
            r.remote_id,
        )

    async def get_reaction(
        self, network: str, portal: PortalKey, target_id: str, sender_remote: str, key: str
    ) -> ReactionRow | None:
        row = await self.db.fetchrow(
            "SELECT * FROM reaction WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
            "AND target_id=$4 AND sender_remote=$5 AND reaction_key=$6",
            network,
            portal.id,
            portal.receiver,
            target_id,
            sender_remote,
            key,
        )
        return reaction_from_row(row) if row else None

    async def reaction_by_event(self, event_id: str) -> ReactionRow | None:
        row = await self.db.fetchrow("SELECT * FROM reaction WHERE event_id=$1", event_id)
        return reaction_from_row(row) if row else None

    async def reaction_in_portal(
        self, network: str, portal: PortalKey, event_id: str
    ) -> ReactionRow | None:
        """The reaction bridged as ``event_id`` if it belongs to this portal, else None."""
        r = await self.reaction_by_event(event_id)
        return r if r is not None and r.network == network and r.portal == portal else None

    async def delete_reaction(self, event_id: str) -> None:
        await self.db.execute("DELETE FROM reaction WHERE event_id=$1", event_id)

    async def delete_portal_rows(self, conn: Any, portal: PortalRow) -> None:
        """Delete a portal's messages, aliases and reactions in the caller's transaction
        (:meth:`Store.delete_portal`); :meth:`forget_cached` once it is committed."""
        args = (portal.network, portal.key.id, portal.key.receiver)
        where = "network=$1 AND portal_id=$2 AND receiver=$3"
        await conn.execute(f"DELETE FROM message WHERE {where}", *args)
        await conn.execute(f"DELETE FROM message_alias WHERE {where}", *args)
        await conn.execute(f"DELETE FROM reaction WHERE {where}", *args)

    def forget_cached(self) -> None:
        """Forget every message cached by event id (their rows may be gone)."""
        self._msg_by_event.clear()
