"""The session's Synapse from one test to the next: a test that stopped its bridge with Synapse's
transaction in flight leaves nothing behind for the next test's bridge.

Two tests, in this order (the second is about the state the first leaves): Synapse counting the
appservice as down when the next test's bridge starts dropped that test's read receipts and held
its messages back for seconds, and then sent it the earlier test's events (what failed
``test_read_receipts_move_the_slack_read_marker`` in long runs; see
bridgekit/testing/appservice_gate.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridgekit.matrix.appservice import AppServiceServer
from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import BridgeEnv, eventually
from tests.helpers import room_with_bot

pytestmark = pytest.mark.engine_independent  # about the harness and Synapse, not the database

#: What the first test leaves for the second.
_left: dict[str, Any] = {}


async def test_a_bridge_stopped_with_a_transaction_in_flight(make_bridge, bridge_env, uid):
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        room_id = await room_with_bot(bridge, alice)
        # Messages on their way to the bridge while it stops, and one after: Synapse's
        # transactions fail and it counts the appservice as down.
        sending = [asyncio.create_task(alice.send_text(room_id, f"late {i}")) for i in range(5)]
        await make_bridge.stop(bridge)
        late = [*await asyncio.gather(*sending), await alice.send_text(room_id, "after the stop")]
        await eventually(lambda: bridge_env.synapse.appservice_state("bridgekit") == "down")
        _left.update(
            user_id=alice.user_id,
            token=alice.access_token,
            device_id=alice.device_id,
            room_id=room_id,
            late=set(late),
            last=late[-1],
        )


async def test_the_next_bridge_gets_its_events_at_once_and_none_of_the_last_tests(
    make_bridge, bridge_env: BridgeEnv, monkeypatch: pytest.MonkeyPatch
):
    if not _left:
        pytest.skip("about what the test before it leaves: run the module")
    received: list[dict[str, Any]] = []
    handle = AppServiceServer.handle_transaction

    async def recording(self: AppServiceServer, request: Any) -> Any:
        received.append(await request.json())
        return await handle(self, request)

    monkeypatch.setattr(AppServiceServer, "handle_transaction", recording)
    await make_bridge()
    room_id = _left["room_id"]
    alice = MatrixTestClient(
        bridge_env.synapse.base_url, _left["user_id"], _left["token"], _left["device_id"]
    )
    async with alice:
        # At once: Synapse passes ephemeral events (receipts, typing) only to an appservice it
        # counts as up, and does not keep them for later.
        await alice.request("POST", f"/rooms/{room_id}/receipt/m.read/{_left['last']}", {})
        said = await alice.send_text(room_id, "for the new bridge")

        def receipts() -> list[dict[str, Any]]:
            return [
                e
                for txn in received
                for e in txn.get("ephemeral", txn.get("de.sorunome.msc2409.ephemeral", []))
                if e.get("type") == "m.receipt" and e.get("room_id") == room_id
            ]

        def events() -> set[str]:
            return {e["event_id"] for txn in received for e in txn.get("events", [])}

        await eventually(lambda: said in events(), timeout=10)
        assert not events() & _left["late"], "the last test's events reached this test's bridge"
        await eventually(lambda: receipts() != [], timeout=10)
