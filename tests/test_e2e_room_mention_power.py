"""``MatrixMessage.may_mention_room`` / ``MatrixEdit.may_mention_room``: the sender's power
in the portal room against ``notifications.room``, read from the room's power levels as they
change (a real Synapse, the runtime and the in-memory fake network)."""

from __future__ import annotations

import pytest

from bridgekit.bridge import Bridge
from tests.conftest import BridgeEnv
from tests.helpers import give_power, portal_scene

pytestmark = pytest.mark.engine_independent


async def test_may_mention_room_follows_the_power_levels(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, _chat, room_id, net = scene

        async def sent(text: str):
            event_id = await alice.send_text(room_id, text)
            item = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
            return item.data

        assert (await sent("@room one")).may_mention_room is False  # level 0 < 50
        await give_power(bridge, room_id, alice.user_id, 100)
        message = await sent("@room two")
        assert message.may_mention_room is True
        # Alice herself raises the bar and steps below it (through the homeserver, so the
        # bridge learns it from the event): she no longer may.
        levels = await alice.get_state(room_id, "m.room.power_levels")
        levels["notifications"] = {"room": 100}
        levels["users"][alice.user_id] = 99
        await alice.send_state(room_id, "m.room.power_levels", "", levels)
        assert (await sent("@room three")).may_mention_room is False
        # An edit says it too.
        edit_id = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* @room four",
                "m.new_content": {"msgtype": "m.text", "body": "@room four"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": message.event_id},
            },
        )
        edit = await net.wait_for(lambda i: i.kind == "edit" and i.data.event_id == edit_id)
        assert edit.data.may_mention_room is False
