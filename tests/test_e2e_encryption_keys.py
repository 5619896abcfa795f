"""End-to-bridge encryption: the bot device's one-time keys and fallback key, with a real
user's client (matrix-nio on vodozemac) claiming them against the real Synapse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.crypto.service import ENCRYPTED, MEGOLM
from bridgekit.testing.e2ee_client import E2EEUser, user_store
from tests.conftest import BridgeEnv, BridgeFactory, eventually
from tests.test_e2e_encryption import ENCRYPTION, _knows_device, as_request, raw_events


@pytest.fixture
async def e2ee_bridge(make_bridge: BridgeFactory) -> Bridge:
    return await make_bridge(**ENCRYPTION)


async def test_one_time_keys_run_out_the_fallback_key_answers_and_is_replaced(
    e2ee_bridge: Bridge, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """Users' clients claim one of the bot device's one-time keys per new Olm session; when
    they run out (many new devices while the bridge is down) the fallback key answers. The
    client then sends the room key over the new session (a to-device message): the homeserver
    pushes it with the bot device's key counts (MSC3202), and the bridge uploads a new fallback
    key and tops the one-time keys up at once, not at its next /sync (30 s)."""
    bridge = e2ee_bridge
    assert bridge.encryption is not None
    backend = bridge.encryption.backend
    device = backend.device_id
    uploads = 0
    real_upload = backend.upload_fallback_key  # type: ignore[attr-defined]

    async def counting() -> None:
        nonlocal uploads
        uploads += 1
        await real_upload()

    backend.upload_fallback_key = counting  # type: ignore[attr-defined]
    plain = await bridge_env.synapse.register_user(uid("alice"))
    async with plain:
        # The DM with the bot, made before alice has an encrypting device: the bot's welcome
        # makes no Olm session with her, so her client will have to claim one of its keys.
        room_id = await plain.create_room(
            invite=[bridge.bot_mxid],
            is_direct=True,
            initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}
            ],
        )

        async def welcomed() -> bool:
            raw = await raw_events(plain, room_id)
            return any(e["sender"] == bridge.bot_mxid and e["type"] == ENCRYPTED for e in raw)

        await eventually(welcomed, timeout=30)
        alice = E2EEUser(
            bridge_env.synapse.base_url, plain.user_id, user_store(tmp_path, plain.user_id)
        )
        async with alice:
            await alice.wait_for(lambda: room_id in alice.client.rooms)
            await eventually(
                lambda: _knows_device(bridge, plain.user_id, alice.device_id), timeout=30
            )
            claim = {"one_time_keys": {bridge.bot_mxid: {device: "signed_curve25519"}}}
            for _ in range(120):  # other new devices use the one-time keys up
                status, resp = await as_request(bridge_env, "POST", "/keys/claim", claim)
                assert status == 200
                (key,) = resp["one_time_keys"][bridge.bot_mxid][device].values()
                if key.get("fallback"):
                    break
            else:
                raise AssertionError("the one-time keys never ran out")
            # Her client claims a key of the bot's device (the fallback key answers) and sends
            # it the room key over the new Olm session, then the message.
            await alice.send_text(room_id, "help")
            await eventually(lambda: uploads >= 1, timeout=20)  # the used fallback key
            # Topped up in the same step (the figure is not the stale count until the next).
            assert backend.one_time_key_count() >= 25
            # The room key that came over the fallback key's session decrypts her message.
            await alice.wait_for(
                lambda: any(
                    m["sender"] == bridge.bot_mxid and "login" in m["content"].get("body", "")
                    for m in alice.messages.get(room_id, ())
                )
            )
            # Once for the one use, though every transaction and /sync since reported it.
            assert uploads == 1
    status, resp = await as_request(bridge_env, "POST", "/keys/claim", claim)
    (key,) = resp["one_time_keys"][bridge.bot_mxid][device].values()
    assert not key.get("fallback")
