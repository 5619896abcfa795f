"""A Matrix user with a real end-to-end encrypting client (matrix-nio on vodozemac), for tests
of end-to-bridge encryption: it logs in (a device of its own), creates and joins encrypted
rooms, sends encrypted messages and decrypts what it receives, as Element would.

Another implementation than the bridge's (mautrix.crypto on libolm): what one encrypts the
other must decrypt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessage,
    RoomRedactResponse,
    RoomSendResponse,
)
from nio.api import Api


class E2EEUser:
    """One device of a Matrix user (see the module docstring). Use ``async with``."""

    def __init__(
        self, homeserver: str, user_id: str, store_dir: Path, password: str = "pw"
    ) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            homeserver,
            user_id,
            store_path=str(store_dir),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        self.user_id = user_id
        self.password = password
        #: Decrypted (or plain) room messages by room, in the order received.
        self.messages: dict[str, list[dict[str, Any]]] = {}
        #: Encrypted events this device could not decrypt, by room.
        self.undecrypted: dict[str, list[MegolmEvent]] = {}
        self.invites: list[str] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> E2EEUser:
        resp = await self.client.login(self.password, device_name="test device")
        if not isinstance(resp, LoginResponse):
            raise RuntimeError(f"login of {self.user_id} failed: {resp}")
        self.client.add_event_callback(self._on_message, (RoomMessage, MegolmEvent))
        self.client.add_event_callback(self._on_invite, InviteMemberEvent)
        self._task = asyncio.create_task(self._sync())
        await self.client.synced.wait()
        # The device's keys are uploaded after the first sync: until then nobody (the
        # bridge included) can share a room key with it.
        deadline = asyncio.get_running_loop().time() + 30
        while self.client.should_upload_keys:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{self.user_id}: the device keys were never uploaded")
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    @property
    def device_id(self) -> str:
        return str(self.client.device_id)

    async def _sync(self) -> None:
        await self.client.sync_forever(timeout=500, full_state=True)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _on_message(self, room: Any, event: Any) -> None:
        if isinstance(event, MegolmEvent):
            self.undecrypted.setdefault(room.room_id, []).append(event)
        else:
            source = dict(event.source)
            source["decrypted"] = bool(getattr(event, "decrypted", False))
            self.messages.setdefault(room.room_id, []).append(source)
        await self._notify()

    async def _on_invite(self, room: Any, event: InviteMemberEvent) -> None:
        if event.state_key == self.user_id and event.membership == "invite":
            if room.room_id not in self.invites:
                self.invites.append(room.room_id)
            await self._notify()

    async def wait_for(self, check: Callable[[], Any], timeout: float = 30) -> Any:
        """Wait until ``check()`` returns something true (re-checked after each change)."""

        async def loop() -> Any:
            async with self._changed:
                while not (found := check()):
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"{self.user_id}: condition not met in {timeout} s") from None

    async def wait_for_message(
        self, room_id: str, body: str, timeout: float = 30
    ) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for m in self.messages.get(room_id, ()):
                if m.get("content", {}).get("body") == body:
                    return m
            return None

        return await self.wait_for(found, timeout)

    async def wait_for_invite(self, timeout: float = 30) -> str:
        return await self.wait_for(lambda: self.invites[-1] if self.invites else None, timeout)

    async def join(self, room_id: str) -> None:
        await self.client.join(room_id)
        await self.wait_for(lambda: room_id in self.client.rooms, 30)

    async def join_encrypted_invite(self, timeout: float = 45) -> str:
        """Join invites as they come until one is to an encrypted room (a portal, not e.g.
        the space a bridge puts it in: nio does not read the encryption of an invite); its
        id. The room's state comes with the join, so its encryption is known then."""
        tried: set[str] = set()
        while True:
            room_id = await self.wait_for(
                lambda: next((r for r in self.invites if r not in tried), None), timeout
            )
            tried.add(room_id)
            await self.join(room_id)
            if self.client.rooms[room_id].encrypted:
                return room_id

    async def create_encrypted_room(
        self, invite: list[str], encryption: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """``encryption``: more of the ``m.room.encryption`` content (rotation settings)."""
        resp = await self.client.room_create(
            invite=invite,
            initial_state=[
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2", **(encryption or {})},
                }
            ],
            **kwargs,
        )
        if not isinstance(resp, RoomCreateResponse):
            raise RuntimeError(f"room creation failed: {resp}")
        room_id = resp.room_id
        await self.wait_for(lambda: room_id in self.client.rooms, 30)
        return room_id

    async def _know_devices(self, room_id: str) -> None:
        """The devices of everyone in the room must be known to share the room key."""
        room = self.client.rooms.get(room_id)
        if room is not None and room.encrypted:
            await self.client.joined_members(room_id)
            if self.client.should_query_keys:
                await self.client.keys_query()

    async def send_text(self, room_id: str, body: str) -> str:
        """Send an encrypted message (the room is encrypted); its event id."""
        return await self.send_event(room_id, "m.room.message", {"msgtype": "m.text", "body": body})

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        """Send any room event, encrypted in an encrypted room; its event id. Reactions are
        encrypted too, as Element does (nio itself would send them in the clear); the
        ``m.relates_to`` of a relation is copied outside the ciphertext, as clients do."""
        await self._know_devices(room_id)
        if event_type != "m.reaction":
            resp = await self.client.room_send(
                room_id, event_type, content, ignore_unverified_devices=True
            )
        else:
            client = self.client
            assert client.olm is not None
            if client.olm.should_share_group_session(room_id):
                await client.share_group_session(room_id, ignore_unverified_devices=True)
            etype, encrypted = client.encrypt(room_id, event_type, content)
            method, path, data = Api.room_send(
                client.access_token, room_id, etype, encrypted, uuid4()
            )
            resp = await client._send(RoomSendResponse, method, path, data, (room_id,))
        if not isinstance(resp, RoomSendResponse):
            raise RuntimeError(f"send failed: {resp}")
        return str(resp.event_id)

    async def redact(self, room_id: str, event_id: str) -> str:
        """Redact an event (redactions are never encrypted); the redaction's event id."""
        resp = await self.client.room_redact(room_id, event_id)
        if not isinstance(resp, RoomRedactResponse):
            raise RuntimeError(f"redaction failed: {resp}")
        return str(resp.event_id)


def user_store(base: Path, user_id: str) -> Path:
    return base / user_id.strip("@").replace(":", "_")
