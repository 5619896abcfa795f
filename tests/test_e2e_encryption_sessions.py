"""Room keys end to end: the bridge's own (outgoing Megolm sessions) follow the room's
``m.room.encryption`` rotation settings, as the spec asks of every sender; a user's room key
that reaches the bridge twice is handled once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from bridgekit.crypto.service import TO_DEVICE
from tests.conftest import BridgeEnv, BridgeFactory, eventually
from tests.helpers import fake
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, open_encrypted_portal, raw_events


async def test_the_bridge_rotates_its_room_key_after_rotation_period_msgs(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    bridge = await make_bridge(**ENCRYPTION)
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        # The management room: alice's client creates it encrypted, with its own settings.
        room_id = await alice.create_encrypted_room(
            invite=[bridge.bot_mxid], encryption={"rotation_period_msgs": 3}, is_direct=True
        )

        def from_bot() -> list[dict[str, Any]]:
            return [m for m in alice.messages.get(room_id, ()) if m["sender"] == bridge.bot_mxid]

        await alice.wait_for(from_bot)  # the welcome
        for _ in range(3):  # each "help" is answered: four messages of the bot's at least
            before = len(from_bot())
            await alice.send_text(room_id, "help")
            await alice.wait_for(lambda b=before: len(from_bot()) > b)
        assert all(m["decrypted"] for m in from_bot()) and not alice.undecrypted.get(room_id)
        raw = await raw_events(plain, room_id)
        sessions = [
            e["content"]["session_id"]
            for e in raw
            if e["sender"] == bridge.bot_mxid and e["type"] == "m.room.encrypted"
        ]
        assert len(sessions) >= 4
        # Three messages per session, then a new one.
        assert sessions == [sessions[i - i % 3] for i in range(len(sessions))]
        assert len(set(sessions)) == (len(sessions) + 2) // 3


async def test_a_room_key_delivered_again_is_handled_once(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """The same to-device message can reach the bridge twice: pushed and read by /sync as the
    bot's device (for what pushes miss, #14710), or in a transaction Synapse sends again under
    a new id (its ids restart with it). A room key is given to the crypto store once (a second
    Olm decryption of it fails), and the room's messages still go through."""
    bridge = await make_bridge(**ENCRYPTION)
    encryption = bridge.encryption
    assert encryption is not None
    backend = encryption.backend
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    delivered: list[dict[str, Any]] = []  # alice's to-device messages, as they came
    handled: list[str] = []  # ... as the crypto store got them
    calls = 0
    real_extras, real_to_device = encryption.handle_extras, backend.handle_to_device

    async def extras(data: dict[str, Any]) -> None:
        nonlocal calls
        delivered.extend(m for m in data.get(TO_DEVICE) or () if m["sender"] == alice.user_id)
        await real_extras(data)
        calls += 1

    async def to_device(events: Any) -> None:
        handled.extend(json.dumps(m["content"]) for m in events if m["sender"] == alice.user_id)
        await real_to_device(events)

    encryption.handle_extras = extras  # type: ignore[method-assign]
    backend.handle_to_device = to_device  # type: ignore[method-assign]
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        first = await alice.send_text(room_id, "with my room key")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == first)
        assert delivered and len(handled) == len(set(handled)) >= 1
        # Delivered again, in a transaction of a new id.
        before, again = calls, [dict(m) for m in delivered]
        url = f"http://127.0.0.1:{bridge_env.as_port}/_matrix/app/v1/transactions/again-{uid('t')}"
        headers = {"Authorization": f"Bearer {bridge_env.hs_token}"}
        async with aiohttp.ClientSession() as http:
            body = {"events": [], TO_DEVICE: again}
            async with http.put(url, json=body, headers=headers) as resp:
                assert resp.status == 200
        await eventually(lambda: calls > before, timeout=30)
        assert len(handled) == len(set(handled))  # nothing twice
        second = await alice.send_text(room_id, "after the second delivery")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == second)
