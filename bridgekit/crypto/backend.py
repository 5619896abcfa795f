"""What the runtime needs from an end-to-end encryption library, and nothing more.

The runtime (crypto/service.py) keeps the policy: which rooms are encrypted, which events wait
for their keys, what is refused. A backend keeps the keys: the bot's device, its Olm sessions
and the rooms' Megolm sessions, in the bridge's own database. Today's backend is mautrix.crypto
on libolm (mautrix_backend.py); libolm is deprecated upstream, and a vodozemac backend (through
its Python binding, or matrix-rust-sdk-crypto) can replace it by implementing this protocol.

Events cross this interface as plain JSON dicts, as they arrive in transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class CryptoError(Exception):
    """Base of what a backend raises."""


class KeyMissing(CryptoError):
    """The room key (Megolm session) of an event has not arrived (yet): keep the event and
    try again when it does."""

    def __init__(self, room_id: str, session_id: str) -> None:
        super().__init__(f"no key yet for session {session_id} in {room_id}")
        self.room_id = room_id
        self.session_id = session_id


class Undecryptable(CryptoError):
    """The event can never be decrypted (corrupt, replayed index, wrong room, bad algorithm)."""


class HomeserverNotReady(CryptoError):
    """The homeserver does not do what end-to-bridge encryption needs (MSC4190 device
    creation for this appservice): said with what to change, and the bridge does not start."""


class DeviceMismatch(CryptoError):
    """The crypto database and the homeserver disagree about the bot's device: running would
    mean an encrypted bridge nobody can encrypt to. Said plainly; the bridge refuses to start."""


@dataclass(frozen=True)
class RoomKeys:
    """What a backend asks the runtime about a room when it shares a room key."""

    #: The room's ``m.room.encryption`` content (rotation settings), or None.
    encryption: dict[str, Any] | None
    #: The Matrix users (not the bridge's own) whose devices get the room key.
    members: Sequence[str]


class RoomInfo(Protocol):
    """The runtime's knowledge of rooms, as a backend sees it."""

    async def room_keys(self, room_id: str) -> RoomKeys: ...

    async def encryption_of(self, room_id: str) -> dict[str, Any] | None: ...

    def rooms_shared_with(self, user_id: str) -> list[str]: ...


class CryptoBackend(Protocol):
    """The bot's device and its keys (see the module docstring)."""

    #: The bot's device id (set by :meth:`start`).
    device_id: str

    async def start(self) -> None:
        """Create the device (or find it), upload its keys and a fallback key, and check that
        the homeserver has the keys the database has; :class:`DeviceMismatch` if not."""
        ...

    async def stop(self) -> None: ...

    async def handle_to_device(self, events: Sequence[dict[str, Any]]) -> None:
        """To-device messages for the bot's device (room keys, key requests), in order."""
        ...

    async def handle_device_lists(self, changed: Sequence[str], left: Sequence[str]) -> None: ...

    async def handle_key_counts(
        self, one_time_keys: int | None, unused_fallback: Sequence[str] | None
    ) -> None:
        """The homeserver's counts for the bot's device: top up one-time keys, and upload a
        new fallback key when the old one was used."""
        ...

    async def decrypt(self, event: dict[str, Any]) -> dict[str, Any]:
        """The decrypted ``type`` and ``content`` of an ``m.room.encrypted`` event (as a new
        event dict, the rest kept); :class:`KeyMissing` or :class:`Undecryptable`."""
        ...

    async def has_room_key(self, room_id: str, session_id: str) -> bool: ...

    async def encrypt(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        """The ``m.room.encrypted`` content of an event, the room key shared first if needed."""
        ...

    async def members_changed(self, room_id: str) -> None:
        """Someone joined or left an encrypted room: the next message needs a new room key."""
        ...

    async def sync(self, timeout_ms: int) -> dict[str, Any]:
        """Wait (up to ``timeout_ms``) for what ``/sync`` as the bot's device brings: its
        to-device messages, device lists and key counts, shaped like a transaction's fields.
        The position is kept by :meth:`synced`."""
        ...

    async def synced(self) -> None:
        """What the last :meth:`sync` returned was handled: the next one starts after it."""
        ...

    async def send_to_own_device(self, event_type: str, content: dict[str, Any]) -> None:
        """A to-device message from the bot's device to itself (the push check)."""
        ...

    def one_time_key_count(self) -> int:
        """The last one-time-key count the homeserver gave (a metric)."""
        ...
