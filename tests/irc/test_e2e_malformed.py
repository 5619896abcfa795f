"""A malformed event from a real Matrix client in an IRC portal (the case issue 19 reports).

Synapse accepts ``m.relates_to.event_id`` as a list or a number. Before, such a message went
to IRC, then its mapping row failed the group commit it shared with another channel's message
and the transaction's "finished" mark, so the transaction was replayed, and both messages sent
to IRC again, at every start.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import BridgeEnv, eventually
from tests.harness.inspircd import InspIRCd
from tests.helpers import notice_says
from tests.irc.e2e import channel_scene, open_channel, privmsg_from, start_bridge
from tests.test_e2e_malformed import _one_transaction


@pytest.mark.parametrize("bad", [["$a", "$b"], 12345], ids=["list", "integer"])
async def test_a_malformed_thread_is_refused_and_its_transaction_not_replayed(
    make_bridge, ircd: InspIRCd, bridge_env: BridgeEnv, uid, bad
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, chan_a, room_a, puppet = scene
        chan_b = "#" + uid("chan")
        await bob.join(chan_b)
        room_b, _ = await open_channel(alice, chan_b, bob)
        bridge = scene.bridge

        async def send(held: asyncio.Event, gate: asyncio.Event) -> None:
            await alice.send_text(room_b, "blocker")
            await asyncio.wait_for(held.wait(), 15)
            await alice.send_message(
                room_a,
                {
                    "msgtype": "m.text",
                    "body": "bad thread",
                    "m.relates_to": {"rel_type": "m.thread", "event_id": bad},
                },
            )
            await alice.send_text(room_b, "good one")
            await asyncio.sleep(0.5)
            gate.set()

        await _one_transaction(bridge, send)
        await bob.wait_for(privmsg_from(puppet, "good one"), timeout=15)
        await alice.wait_for_event(room_a, notice_says("not bridged"))

        async def finished() -> bool:  # the room's job ends just after its notice is sent
            return await bridge.store.pending_transactions() == []

        await eventually(finished, timeout=10)

        await make_bridge.stop(bridge)
        scene.bridge = await start_bridge(make_bridge, ircd)
        await alice.send_text(room_b, "after restart")
        await bob.wait_for(lambda m: m.trailing == "after restart", timeout=30)
        await asyncio.sleep(1)
        said = [m.trailing for m in bob.history if m.command == "PRIVMSG"]
        assert said.count("good one") == 1, said
        assert "bad thread" not in said
