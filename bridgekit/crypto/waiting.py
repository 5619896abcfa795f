"""Encrypted events that wait for their room key (``crypto_waiting``).

A failed decryption never fails a transaction. An event whose room key has not arrived is
stored here before its transaction is marked finished, and handed back (in the order the
events came) once the key is there: it may come later in a transaction, by /sync, or from a
key share. After ``encryption.decrypt_timeout`` seconds its sender is told, once, that it was
not bridged (yet). An event that can never be decrypted is said so at once (at most once a
minute per sender and room: junk in a loop must not make the bot talk in a loop). One whose
decryption failed for a passing reason (the crypto store's database locked, the homeserver
failing a device look-up) waits too, and is tried again within TELL_INTERVAL seconds; so are
the events found waiting at start whose key came before a restart.

In order: while an event of a room waits for its key (and its sender has not been told yet),
the room's later encrypted events wait behind it, even those whose key is there, and are
handed back after it (a user's client that rotates its key sends the next messages with the
new one, whose key may come first). Once its sender is told, it no longer holds the room up.

Only in the rooms the bridge serves (portals, management rooms: ``serves``). Elsewhere the
bot decrypts only to see commands (e.g. ``bridge`` to plumb the room): a notice about every
line of chatter whose key it lacks would be noise, and a command whose key comes after the
timeout is dropped rather than run late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mautrix.util.async_db import Database

from ..database.records import LRU
from .backend import CryptoBackend, KeyMissing, Undecryptable

log = logging.getLogger("bridgekit.crypto")

#: Set on an event dict that was decrypted (the router's ``require`` check reads it).
DECRYPTED_KEY = "net.bridgekit.decrypted"
#: Seconds between two looks for waiting events whose sender should be told.
TELL_INTERVAL = 5.0
#: Seconds between two "could not be decrypted" notices to one sender in one room.
UNDECRYPTABLE_TELL_INTERVAL = 60.0


class WaitingEvents:
    """The events waiting for their keys (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        backend: Callable[[], CryptoBackend],
        send_notice: Callable[[str, str], Awaitable[Any]],
        decrypt_timeout: float,
    ) -> None:
        self.db = db
        self._backend = backend
        self.send_notice = send_notice
        self.decrypt_timeout = decrypt_timeout
        #: Handles an event whose key came (set by the runtime: on the room's inbox lane).
        self.redeliver: Callable[[dict[str, Any]], None] = lambda evt: None
        #: Whether a room is one the bridge serves, whose senders are told (set by the runtime).
        self.serves: Callable[[str], bool] = lambda room_id: True
        #: Events waiting now, and decryption failures since start (the metrics).
        self.waiting = 0
        self.failures = 0
        self._redelivering: set[str] = set()
        self._told = LRU(10_000)  # (room, sender) -> when last told "undecryptable"
        #: Waiting events whose sender has not been told: event id -> room (they hold their
        #: room's later events behind them).
        self._holding: dict[str, str] = {}
        self._held_rooms: dict[str, int] = {}
        #: The last ``received_at`` given: strictly increasing, so that it orders the rows.
        self._last_received = 0
        #: Events failed to decrypt for a passing reason: the tell loop tries them again.
        self._retry_due = False

    async def load(self) -> None:
        self.waiting = await self.count()
        self._last_received = int(
            await self.db.fetchval("SELECT max(received_at) FROM crypto_waiting") or 0
        )
        for row in await self.db.fetch("SELECT event_id, room_id FROM crypto_waiting WHERE told=0"):
            self._hold(row["event_id"], row["room_id"])
        self._retry_due = self.waiting > 0  # keys may have come before the restart

    def _hold(self, event_id: str, room_id: str) -> None:
        if event_id not in self._holding:
            self._holding[event_id] = room_id
            self._held_rooms[room_id] = self._held_rooms.get(room_id, 0) + 1

    def _release(self, event_id: str) -> None:
        room_id = self._holding.pop(event_id, None)
        if room_id is not None:
            left = self._held_rooms.get(room_id, 1) - 1
            if left > 0:
                self._held_rooms[room_id] = left
            else:
                self._held_rooms.pop(room_id, None)

    async def count(self) -> int:
        return int(await self.db.fetchval("SELECT count(*) FROM crypto_waiting") or 0)

    async def decrypt(self, evt: dict[str, Any]) -> dict[str, Any] | None:
        """The decrypted event, or None: it waits for its key (stored before this returns)
        or can never be decrypted (its sender is told)."""
        try:
            out = await self._backend().decrypt(evt)
        except KeyMissing as e:
            await self._keep(evt, e.session_id)
            return None
        except Undecryptable as e:
            await self._undecryptable(evt, e)
            return None
        except Exception as e:
            # Neither "no key" nor "never": a passing failure (the crypto store's database
            # locked, the homeserver's /keys/query failing). Dropping the event would lose
            # it; it waits like one without its key and is tried again shortly.
            log.warning("Could not decrypt %s now (%s): trying again", evt.get("event_id"), e)
            await self._keep(evt, str((evt.get("content") or {}).get("session_id") or ""))
            self._retry_due = True
            return None
        if evt["room_id"] in self._held_rooms:
            # An earlier event of the room waits for its key: this one waits behind it.
            content = evt.get("content")
            session = content.get("session_id") if isinstance(content, dict) else None
            await self._keep(evt, str(session or ""))
            await self.retry()
            return None
        out[DECRYPTED_KEY] = True
        return out

    async def _undecryptable(self, evt: dict[str, Any], e: Exception) -> None:
        self.failures += 1
        room_id, sender = evt["room_id"], str(evt.get("sender"))
        log.warning("Could not decrypt %s in %s: %s", evt.get("event_id"), room_id, e)
        if not self.serves(room_id):
            return
        now = time.monotonic()
        last = self._told.get((room_id, sender))
        if last is not None and now - last < UNDECRYPTABLE_TELL_INTERVAL:
            return
        self._told.put((room_id, sender), now)
        await self.send_notice(
            room_id,
            f"{sender}: your message could not be decrypted by the bridge (it was not bridged).",
        )

    async def _keep(self, evt: dict[str, Any], session_id: str) -> None:
        log.info(
            "No room key yet for %s in %s (session %s): it waits for it",
            evt.get("event_id"),
            evt["room_id"],
            session_id,
        )
        self._last_received = max(int(time.time() * 1000), self._last_received + 1)
        event_id = str(evt.get("event_id"))
        await self.db.execute(
            "INSERT INTO crypto_waiting (event_id, room_id, session_id, event, received_at, told) "
            "VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (event_id) DO NOTHING",
            event_id,
            evt["room_id"],
            session_id,
            json.dumps(evt),
            self._last_received,
        )
        self._hold(event_id, evt["room_id"])
        self.waiting = await self.count()  # (a replayed event is not counted twice)

    async def retry(self) -> None:
        """Hand back, in the order they came, the waiting events whose key has arrived, each
        room's up to its first one that still waits for its key and holds the rest (handed
        back onto the room's lane, they keep this order there)."""
        rows = await self.db.fetch(
            "SELECT event_id, room_id, session_id, event FROM crypto_waiting "
            "ORDER BY received_at, event_id"
        )
        have: dict[tuple[str, str], bool] = {}
        held: set[str] = set()
        for row in rows:
            room_id, event_id = row["room_id"], row["event_id"]
            if room_id in held or event_id in self._redelivering:
                continue
            key = (room_id, row["session_id"])
            if key not in have:
                have[key] = await self._backend().has_room_key(*key)
            if have[key]:
                self._redelivering.add(event_id)
                self.redeliver(json.loads(row["event"]))
            elif event_id in self._holding:
                held.add(room_id)

    async def handle(
        self,
        evt: dict[str, Any],
        handle: Callable[[dict[str, Any], bool], Awaitable[None]],
    ) -> None:
        """Decrypt an event that waited for its key and ``handle`` it (as a replay: it may
        have been handled before a crash), then forget it."""
        event_id = str(evt.get("event_id"))
        try:
            out = await self._backend().decrypt(evt)
        except KeyMissing:
            return  # not this one's key after all: it keeps waiting
        except Undecryptable as e:
            self.failures += 1
            log.warning("Could not decrypt %s after its key came: %s", event_id, e)
            await self._done(event_id)
            return
        except Exception as e:  # passing (see decrypt): it keeps waiting, tried again soon
            log.warning("Could not decrypt %s now (%s): trying again", event_id, e)
            self._retry_due = True
            return
        finally:
            self._redelivering.discard(event_id)
        out[DECRYPTED_KEY] = True
        log.info("Decrypted %s in %s now that its key came", event_id, evt.get("room_id"))
        try:
            await handle(out, True)
        finally:
            await self._done(event_id)

    async def _done(self, event_id: str) -> None:
        self._release(event_id)
        self.waiting = max(0, self.waiting - 1)
        await self.db.execute("DELETE FROM crypto_waiting WHERE event_id=$1", event_id)

    async def tell_loop(self) -> None:
        """Every TELL_INTERVAL seconds: events whose decryption failed for a passing reason
        are tried again, and the senders of events that waited too long are told."""
        while True:
            await asyncio.sleep(TELL_INTERVAL)
            try:
                if self._retry_due:
                    self._retry_due = False
                    await self.retry()
                await self.tell_late_senders()
            except Exception as e:
                log.warning("Could not look at the events waiting for keys: %s", e)

    async def tell_late_senders(self) -> None:
        """Tell the senders of events that waited past the timeout, once each."""
        limit = int((time.time() - self.decrypt_timeout) * 1000)
        rows = await self.db.fetch(
            "SELECT event_id, room_id, session_id, event FROM crypto_waiting "
            "WHERE told=0 AND received_at<$1 ORDER BY received_at, event_id",
            limit,
        )
        released = False
        for row in rows:
            if await self._backend().has_room_key(row["room_id"], row["session_id"]):
                continue  # its key is there: it waits behind another (handed back in order)
            released = True
            self._release(row["event_id"])  # it no longer holds its room up
            sender = json.loads(row["event"]).get("sender")
            self.failures += 1
            if not self.serves(row["room_id"]):
                if row["event_id"] in self._redelivering:
                    continue  # its key came just now
                log.info(
                    "No room key came for %s in %s (no portal) in %.0f s: dropped",
                    row["event_id"],
                    row["room_id"],
                    self.decrypt_timeout,
                )
                await self._done(row["event_id"])
                continue
            await self.send_notice(
                row["room_id"],
                f"{sender}: the bridge could not decrypt your message (its room key did not "
                "reach the bridge); it was not bridged. It will be if the key arrives later.",
            )
            await self.db.execute(
                "UPDATE crypto_waiting SET told=1 WHERE event_id=$1", row["event_id"]
            )
        if released:
            await self.retry()  # what waited behind them goes on
