"""A decryption that fails for a passing reason (the crypto store's database locked, the
homeserver's /keys/query failing) does not lose the event: it waits and is bridged once the
failure is over. Found by bench/ingest.py --encrypted --cold-devices, where a "database is
locked" in the crypto store's device write dropped 1-2 events in 15,000."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bridgekit.bridge import Bridge
from tests.conftest import BridgeEnv, BridgeFactory, eventually
from tests.helpers import fake
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, open_encrypted_portal


async def test_a_passing_decryption_failure_keeps_the_event_and_bridges_it_once(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    bridge: Bridge = await make_bridge(**ENCRYPTION)
    assert bridge.encryption is not None
    backend = bridge.encryption.backend
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        _, _, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        real = backend.decrypt
        failures = 0

        async def locked_once(event: dict[str, Any]) -> dict[str, Any]:
            nonlocal failures
            if failures == 0:
                failures += 1
                raise sqlite3.OperationalError("database is locked")
            return await real(event)

        backend.decrypt = locked_once  # type: ignore[method-assign]
        event_id = await alice.send_text(room_id, "through a locked database")
        sent = await net.wait_for(
            lambda i: i.kind == "message" and i.data.event_id == event_id, timeout=60
        )
        assert failures == 1 and sent.data.content.body == "through a locked database"
        await eventually(lambda: _none_waiting(bridge), timeout=30)
        later = await alice.send_text(room_id, "and the next one")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == later)
        bridged = [i for i in net.sent if i.kind == "message" and i.data.event_id == event_id]
        assert len(bridged) == 1
        assert bridge.encryption.figures()["decryption_failures"] == 0


async def _none_waiting(bridge: Bridge) -> bool:
    assert bridge.encryption is not None
    return await bridge.encryption.waiting_count() == 0
