"""Events waiting for their room keys are handed back in order, and one whose key never
comes holds its room's later events up only until its sender is told
(bridgekit/crypto/waiting.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mautrix.util.async_db import Database

from bridgekit.crypto import waiting as waiting_module
from bridgekit.crypto.backend import KeyMissing
from bridgekit.crypto.waiting import WaitingEvents
from bridgekit.database.db import create_database, migrate, package_migrations


class Backend:
    def __init__(self) -> None:
        self.keys: set[str] = {"s2"}

    async def decrypt(self, evt: dict[str, Any]) -> dict[str, Any]:
        session = evt["content"]["session_id"]
        if session not in self.keys:
            raise KeyMissing(evt["room_id"], session)
        return {**evt, "type": "m.room.message", "content": {"body": evt["event_id"]}}

    async def has_room_key(self, room_id: str, session_id: str) -> bool:
        return session_id in self.keys


def event(event_id: str, session: str, room: str = "!r:x") -> dict[str, Any]:
    content = {"algorithm": "m.megolm.v1.aes-sha2", "session_id": session}
    return {"type": "m.room.encrypted", "event_id": event_id, "room_id": room, "content": content}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(f"sqlite:///{tmp_path}/w.db")
    await database.start()
    await migrate(database, "bridgekit_crypto", package_migrations("bridgekit.crypto.migrations"))
    yield database
    await database.stop()


async def test_a_later_event_waits_behind_one_without_its_key_until_its_sender_is_told(
    db: Database,
) -> None:
    backend, told = Backend(), []

    async def notice(room_id: str, text: str) -> None:
        told.append(text)

    # -1: every waiting event is past it (0 would hinge on the millisecond clock)
    waiting = WaitingEvents(db, lambda: backend, notice, decrypt_timeout=-1)  # type: ignore[arg-type, return-value]
    handed: list[str] = []
    waiting.redeliver = lambda evt: handed.append(evt["event_id"])
    await waiting.load()
    assert await waiting.decrypt(event("$1", "s1")) is None  # its key has not come
    assert await waiting.decrypt(event("$2", "s2")) is None  # its key is there: behind $1
    other = await waiting.decrypt(event("$3", "s2", room="!other:x"))  # another room: free
    assert other is not None and other["content"]["body"] == "$3"
    assert handed == [] and await waiting.count() == 2

    await waiting.tell_late_senders()  # $1's sender is told; $2 goes on, $1 keeps waiting
    assert len(told) == 1 and handed == ["$2"]
    await waiting.handle(event("$2", "s2"), lambda evt, replay: _none())
    assert await waiting.count() == 1

    # A restart: $1 (told) holds nothing up; its key comes late: handed back then.
    again = WaitingEvents(db, lambda: backend, notice, decrypt_timeout=3600)  # type: ignore[arg-type, return-value]
    again.redeliver = lambda evt: handed.append(evt["event_id"])
    await again.load()
    assert (await again.decrypt(event("$4", "s2"))) is not None
    backend.keys.add("s1")
    await again.retry()
    assert handed == ["$2", "$1"]


async def _none() -> None:
    return None


async def test_events_whose_key_came_before_a_restart_are_handed_back_after_it(
    db: Database, monkeypatch
) -> None:
    """A key that came while the bridge was stopping (or was stored by the crypto store
    before its event could be handed back) sends no new to-device message after the restart:
    the tell loop's first round hands those events back, not the next key's arrival."""
    backend, handed = Backend(), []
    waiting = WaitingEvents(db, lambda: backend, lambda r, t: _none(), decrypt_timeout=3600)  # type: ignore[arg-type, return-value]
    await waiting.load()
    assert await waiting.decrypt(event("$1", "s1")) is None
    backend.keys.add("s1")  # then the bridge stops before anything hands $1 back

    again = WaitingEvents(db, lambda: backend, lambda r, t: _none(), decrypt_timeout=3600)  # type: ignore[arg-type, return-value]
    again.redeliver = lambda evt: handed.append(evt["event_id"])
    await again.load()
    slept = 0

    async def one_round(_seconds: float) -> None:
        nonlocal slept
        slept += 1
        if slept > 1:
            raise asyncio.CancelledError

    monkeypatch.setattr(waiting_module.asyncio, "sleep", one_round)
    with pytest.raises(asyncio.CancelledError):
        await again.tell_loop()
    assert handed == ["$1"]
