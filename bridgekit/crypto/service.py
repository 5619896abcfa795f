"""End-to-bridge encryption in the runtime: the policy around a :class:`CryptoBackend`.

* Transactions: to-device messages, one-time-key counts and device lists (MSC2409, MSC3202)
  are handled on a lane of their own before the room events of the same transaction are
  decrypted (outbox/transactions.py waits for it). A transaction carrying only those is stored
  before its 200 like any other (:meth:`Encryption.wants`).
* The same fields also come from ``/sync`` as the bot's device, for as long as the bridge runs:
  Synapse drops to-device messages while it counts the bridge down (#14710). Each to-device
  message is handled once, whichever way it came (``crypto_seen``).
* Decryption never fails a transaction: an event whose room key has not arrived waits
  (crypto/waiting.py) and is handled when the key arrives.
* Sending: every event the bridge sends to a room passes :meth:`Encryption.outgoing`; in an
  encrypted room it is encrypted with the bot's device, and nothing goes out in plaintext: a
  room whose encryption is not known yet is asked about first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import quote

from mautrix.util.async_db import Database

from ..database.db import migrate, package_migrations
from ..database.records import LRU
from ..settings import EncryptionSettings
from .backend import CryptoBackend, RoomKeys
from .waiting import DECRYPTED_KEY, WaitingEvents

log = logging.getLogger("bridgekit.crypto")

ENCRYPTED = "m.room.encrypted"
MEGOLM = "m.megolm.v1.aes-sha2"
#: Keys of a transaction this module handles (MSC2409, MSC3202).
TO_DEVICE = "de.sorunome.msc2409.to_device"
DEVICE_LISTS = "org.matrix.msc3202.device_lists"
OTK_COUNTS = (
    "org.matrix.msc3202.device_one_time_keys_count",
    "org.matrix.msc3202.device_one_time_key_counts",
)
FALLBACK_TYPES = "org.matrix.msc3202.device_unused_fallback_key_types"
#: The to-device message the bot's device sends itself at start, to see whether the
#: homeserver pushes to-device messages in transactions (else /sync alone brings them).
PROBE_TYPE = "net.bridgekit.to_device_probe"
#: Set on what /sync brought (so the push check does not count it).
VIA_SYNC = "net.bridgekit.via_sync"
#: Probes sent (one every PROBE_INTERVAL seconds) before saying that pushes do not come.
PROBE_TRIES = 6
PROBE_INTERVAL = 10.0
#: How long one /sync as the bot's device waits for something new (milliseconds).
SYNC_TIMEOUT_MS = 30_000
#: Seconds a handled to-device message is remembered (to skip its second delivery).
SEEN_KEEP = 7 * 24 * 3600
#: What ``encryption.require`` refuses in the clear in an encrypted room.
_MUST_BE_ENCRYPTED = frozenset({"m.room.message", "m.sticker", "m.reaction"})


class Encryption:
    """The runtime's end-to-bridge encryption (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: EncryptionSettings,
        db: Database,
        bot_mxid: str,
        is_ours: Callable[[str], bool],
        room_request: Callable[[str, dict[str, str]], Awaitable[Any]],
        send_notice: Callable[[str, str], Awaitable[Any]],
        make_backend: Callable[[Encryption], Awaitable[CryptoBackend]],
    ) -> None:
        """``room_request(path, query)``: a client-server API GET (``/rooms/...``) as the bot
        (its JSON, or raises mautrix's errors);
        ``make_backend``: builds the backend on this object (its :class:`RoomInfo`) at start,
        once the homeserver session exists."""
        self.settings = settings
        self.db = db
        self.bot_mxid = bot_mxid
        self.is_ours = is_ours
        self._room_request = room_request
        self.send_notice = send_notice
        self._make_backend = make_backend
        self.backend: CryptoBackend
        #: room id -> its m.room.encryption content, or None (known not to be encrypted).
        self._rooms: dict[str, dict[str, Any] | None] = {}
        #: Encrypted rooms -> their members that are not ours (device-list changes).
        self._members: dict[str, set[str]] = {}
        #: Events waiting for their room keys (``waiting.redeliver`` is set by the runtime).
        self.waiting = WaitingEvents(
            db, lambda: self.backend, send_notice, settings.decrypt_timeout
        )
        #: Runs :meth:`handle_extras` on the transactions' crypto lane (set by the runtime).
        self.submit_extras: Callable[[dict[str, Any]], Awaitable[None]] = self.handle_extras
        self._seen_recent = LRU(10_000)
        #: Whether the homeserver pushed a to-device message in a transaction (the probe).
        self.push_works = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await migrate(
            self.db, "bridgekit_crypto", package_migrations("bridgekit.crypto.migrations")
        )
        for row in await self.db.fetch("SELECT room_id, encryption FROM crypto_room"):
            self._rooms[row["room_id"]] = json.loads(row["encryption"])
        await self.waiting.load()
        for row in await self.db.fetch("SELECT room_id, user_id FROM crypto_member"):
            self._members.setdefault(row["room_id"], set()).add(row["user_id"])
        self.backend = await self._make_backend(self)
        await self.backend.start()
        await self.db.execute(
            "DELETE FROM crypto_seen WHERE seen_at<$1", int((time.time() - SEEN_KEEP) * 1000)
        )
        self._tasks.append(asyncio.create_task(self.waiting.tell_loop()))

    def serve(self, submit_extras: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Once the appservice listens: read the device's to-device inbox with /sync (what
        it brings is handed to ``submit_extras``: the transactions' crypto lane), and check
        that to-device messages are pushed too."""
        self.submit_extras = submit_extras
        self._tasks.append(asyncio.create_task(self._sync_loop()))
        self._tasks.append(asyncio.create_task(self._probe()))

    async def _probe(self) -> None:
        """Send the bot's device a to-device message now and then until one comes in a
        transaction. A homeserver that never pushes them (Synapse without
        ``msc2409_to_device_messages_enabled``, a registration without ``receive_ephemeral``)
        still works, through /sync alone; an admin should know. (One that counts the bridge
        down drops them too, for a while: hence several tries.)"""
        for _ in range(PROBE_TRIES):
            try:
                await self.backend.send_to_own_device(PROBE_TYPE, {"at": time.time()})
            except Exception as e:
                log.debug("Could not send the to-device probe: %s", e)
            try:
                await asyncio.wait_for(self.push_works.wait(), PROBE_INTERVAL)
                log.info("The homeserver pushes to-device messages to the bridge")
                return
            except TimeoutError:
                continue
        log.warning(
            "The homeserver did not push a to-device message to the bridge in %.0f s: room keys "
            "are read with /sync as the bot's device only (slower). Synapse needs "
            "experimental_features: msc2409_to_device_messages_enabled: true, and the "
            "registration receive_ephemeral: true (registration/README.md).",
            PROBE_TRIES * PROBE_INTERVAL,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.backend.stop()

    async def _sync_loop(self) -> None:
        """/sync as the bot's device, for ever: Synapse drops to-device messages from the
        transactions of an appservice it counts as down (they are not in its catch-up
        either: Synapse issue #14710), so room keys sent meanwhile would be lost. What both
        paths bring is handled once (:meth:`handle_extras` skips what it has seen)."""
        failures = 0
        while True:
            try:
                data = await self.backend.sync(SYNC_TIMEOUT_MS)
                data[VIA_SYNC] = True
                await self.submit_extras(data)
                await self.backend.synced()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failures += 1
                delay = min(60.0, 0.5 * 2**failures)
                hint = (
                    " (Synapse cannot /sync as an appservice's sender: if the registration it "
                    "loaded still has the bot as sender_localpart, run generate-registration "
                    "again and restart it)"
                    if failures == 3
                    else ""
                )
                log.warning(
                    "/sync as the bot's device failed (%s), again in %.0f s%s", e, delay, hint
                )
                await asyncio.sleep(delay)

    # -- rooms (the backend's RoomInfo) -------------------------------------------------------

    async def encryption_of(self, room_id: str) -> dict[str, Any] | None:
        """The room's ``m.room.encryption`` content, asked of the homeserver the first time."""
        if room_id in self._rooms:
            return self._rooms[room_id]
        try:
            content = await self._room_request(
                f"/rooms/{quote(room_id, safe='')}/state/m.room.encryption/", {}
            )
        except Exception as e:
            status = getattr(e, "http_status", None)
            if status != 404:
                raise  # unknown: never guess "plaintext"
            content = None
        await self.set_encryption(room_id, content if isinstance(content, dict) else None)
        return self._rooms[room_id]

    async def set_encryption(self, room_id: str, content: dict[str, Any] | None) -> None:
        if content is not None and content.get("algorithm") != MEGOLM:
            log.warning("Room %s uses %r, not %s", room_id, content.get("algorithm"), MEGOLM)
        if content is not None:
            await self.db.execute(
                "INSERT INTO crypto_room (room_id, encryption) VALUES ($1, $2) "
                "ON CONFLICT (room_id) DO UPDATE SET encryption=excluded.encryption",
                room_id,
                json.dumps(content),
            )
        self._rooms[room_id] = content

    def is_encrypted(self, room_id: str) -> bool:
        return self._rooms.get(room_id) is not None

    async def room_keys(self, room_id: str) -> RoomKeys:
        """The room's rotation settings and the members (joined or invited, not ours) whose
        devices get its room key (asked of the homeserver: a fresh answer each new key)."""
        data = await self._room_request(
            f"/rooms/{quote(room_id, safe='')}/members", {"not_membership": "leave"}
        )
        members = {
            e["state_key"]
            for e in (data or {}).get("chunk") or ()
            if isinstance(e, dict)
            and isinstance(e.get("state_key"), str)
            and (e.get("content") or {}).get("membership") in ("join", "invite")
            and not self.is_ours(e["state_key"])
        }
        await self._set_members(room_id, members)
        return RoomKeys(self._rooms.get(room_id), sorted(members))

    async def _set_members(self, room_id: str, members: set[str]) -> None:
        """Remember who is in an encrypted room (in the database: a restart must not forget
        whose device changes concern it)."""
        known = self._members.get(room_id, set())
        for user in members - known:
            await self.db.execute(
                "INSERT INTO crypto_member (room_id, user_id) VALUES ($1, $2) "
                "ON CONFLICT (room_id, user_id) DO NOTHING",
                room_id,
                user,
            )
        for user in known - members:
            await self.db.execute(
                "DELETE FROM crypto_member WHERE room_id=$1 AND user_id=$2", room_id, user
            )
        self._members[room_id] = set(members)

    def rooms_shared_with(self, user_id: str) -> list[str]:
        return [room for room, members in self._members.items() if user_id in members]

    # -- transactions --------------------------------------------------------------------------

    def _to_device(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        msgs = data.get(TO_DEVICE) or data.get("to_device") or ()
        return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []

    def wants(self, data: dict[str, Any]) -> bool:
        """Whether a transaction carries what must be kept until handled: to-device messages
        (room keys) and device-list changes."""
        lists = data.get(DEVICE_LISTS)
        return bool(self._to_device(data)) or (
            isinstance(lists, dict)
            and bool(_user_ids(lists.get("changed")) or _user_ids(lists.get("left")))
        )

    def has_extras(self, data: dict[str, Any]) -> bool:
        return self.wants(data) or any(k in data for k in (*OTK_COUNTS, FALLBACK_TYPES))

    async def handle_extras(self, data: dict[str, Any]) -> None:
        """Device lists, then to-device messages, then key counts (top-ups after the keys
        the to-device messages used), then the events that waited for keys."""
        lists = data.get(DEVICE_LISTS)
        if isinstance(lists, dict):
            changed, left = _user_ids(lists.get("changed")), _user_ids(lists.get("left"))
            if changed or left:
                await self.backend.handle_device_lists(changed, left)
        mine = [
            m
            for m in self._to_device(data)
            if m.get("to_user_id") == self.bot_mxid
            and m.get("to_device_id") == self.backend.device_id
        ]
        probes = [m for m in mine if m.get("type") == PROBE_TYPE]
        if probes:
            if not data.get(VIA_SYNC) and any(m.get("sender") == self.bot_mxid for m in probes):
                self.push_works.set()
            mine = [m for m in mine if m.get("type") != PROBE_TYPE]
        to_device = await self._unseen(mine)
        if to_device:
            log.debug(
                "%d to-device message(s): %s",
                len(to_device),
                ", ".join(f"{m.get('type')} from {m.get('sender')}" for m in to_device),
            )
            await self.backend.handle_to_device(to_device)
            await self._seen(to_device)
        otk, fallback = self._own_counts(data)
        if otk is not None or fallback is not None:
            await self.backend.handle_key_counts(otk, fallback)
        if to_device:
            await self.retry_waiting()

    @staticmethod
    def _digest(msg: dict[str, Any]) -> str:
        raw = json.dumps(
            {k: v for k, v in msg.items() if k not in ("to_user_id", "to_device_id")},
            sort_keys=True,
            default=str,
        )
        return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()

    async def _unseen(self, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The to-device messages not handled before (each comes by push and by /sync)."""
        out, digests = [], set()
        for msg in msgs:
            digest = self._digest(msg)
            if digest in digests or self._seen_recent.get(digest):
                continue
            if await self.db.fetchval("SELECT 1 FROM crypto_seen WHERE digest=$1", digest):
                self._seen_recent.put(digest, True)
                continue
            digests.add(digest)
            out.append(msg)
        return out

    async def _seen(self, msgs: list[dict[str, Any]]) -> None:
        now = int(time.time() * 1000)
        for msg in msgs:
            digest = self._digest(msg)
            self._seen_recent.put(digest, True)
            await self.db.execute(
                "INSERT INTO crypto_seen (digest, seen_at) VALUES ($1, $2) "
                "ON CONFLICT (digest) DO NOTHING",
                digest,
                now,
            )

    def _own_counts(self, data: dict[str, Any]) -> tuple[int | None, Sequence[str] | None]:
        """The bot device's one-time-key count and unused fallback key types, if given (a
        malformed field is ignored: the next transaction brings new counts)."""

        def mine(key: str) -> Any:
            by_user = data.get(key)
            by_device = by_user.get(self.bot_mxid) if isinstance(by_user, dict) else None
            return by_device.get(self.backend.device_id) if isinstance(by_device, dict) else None

        otk: int | None = None
        for key in OTK_COUNTS:
            counts = mine(key)
            if isinstance(counts, dict) and isinstance(counts.get("signed_curve25519"), int):
                otk = counts["signed_curve25519"]
                break
        types = mine(FALLBACK_TYPES)
        if isinstance(types, list) and all(isinstance(t, str) for t in types):
            return otk, types
        return otk, None

    # -- decryption ----------------------------------------------------------------------------

    async def decrypt(self, evt: dict[str, Any]) -> dict[str, Any] | None:
        """The decrypted event, or None: it waits for its key (stored) or can never be
        decrypted (its sender is told)."""
        return await self.waiting.decrypt(evt)

    async def retry_waiting(self) -> None:
        await self.waiting.retry()

    async def waiting_count(self) -> int:
        return await self.waiting.count()

    def figures(self) -> dict[str, float]:
        """For the metrics: events waiting for keys, decryption failures, one-time keys."""
        return {
            "waiting_events": self.waiting.waiting,
            "decryption_failures": self.waiting.failures,
            "one_time_keys": self.backend.one_time_key_count(),
        }

    # -- state ---------------------------------------------------------------------------------

    async def on_state(self, evt: dict[str, Any]) -> None:
        """``m.room.encryption`` and members of encrypted rooms, from transactions."""
        room_id, etype = evt.get("room_id"), evt.get("type")
        content = evt.get("content")
        if not isinstance(room_id, str) or not isinstance(content, dict):
            return
        if etype == "m.room.encryption" and evt.get("state_key") == "":
            await self.set_encryption(room_id, content)
        elif etype == "m.room.member" and self.is_encrypted(room_id):
            user = evt.get("state_key")
            if not isinstance(user, str) or self.is_ours(user):
                return  # ghosts have no devices: their joins need no new room key
            if room_id not in self._members:
                # Members not known yet: the next room key is shared with a fresh list.
                await self.backend.members_changed(room_id)
                return
            members = set(self._members[room_id])
            if content.get("membership") in ("join", "invite"):
                if user in members:
                    return
                members.add(user)
            elif user in members:
                members.discard(user)
            else:
                return
            await self._set_members(room_id, members)
            # Someone new must get the next messages' key; someone gone must not.
            await self.backend.members_changed(room_id)

    # -- sending -------------------------------------------------------------------------------

    def new_room_state(self) -> list[dict[str, Any]]:
        """The initial state that makes a new portal room encrypted (``encryption.default``)."""
        if not self.settings.default:
            return []
        return [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}]

    async def outgoing(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """What to send for an event: encrypted in an encrypted room, else as it is."""
        if event_type == ENCRYPTED or await self.encryption_of(room_id) is None:
            return event_type, content
        return ENCRYPTED, await self.backend.encrypt(room_id, event_type, content)

    def refuses_plaintext(self, evt: dict[str, Any]) -> bool:
        """``encryption.require``: an unencrypted message, sticker or reaction in an encrypted
        room is refused (some clients send reactions in the clear; redactions and state
        events are never encrypted)."""
        return (
            self.settings.require
            and evt.get("type") in _MUST_BE_ENCRYPTED
            and not evt.get(DECRYPTED_KEY)
            and self.is_encrypted(str(evt.get("room_id")))
        )


def _user_ids(value: Any) -> list[str]:
    """The strings of a list from a transaction (anything else: none)."""
    return [u for u in value if isinstance(u, str)] if isinstance(value, list) else []
