"""The bridge's room keys (outgoing Megolm sessions) follow the room's ``m.room.encryption``
rotation settings, as the spec asks of every sender: a client that set
``rotation_period_msgs: 3`` sees a new session after three of the bridge's messages, and
reads them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import BridgeEnv, BridgeFactory
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, raw_events


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
