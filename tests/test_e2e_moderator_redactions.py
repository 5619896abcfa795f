"""A Matrix moderator's redaction of another's bridged message: it reaches only networks
whose clients say moderators may delete others' messages there (``ModeratesMessages``,
Discord's); elsewhere it stays on Matrix. (The Discord side: tests/discord/test_e2e_deletes.py.)"""

from __future__ import annotations

import pytest

from bridgekit.bridge import Bridge
from tests.conftest import BridgeEnv
from tests.helpers import body_is, give_power, portal_scene

pytestmark = pytest.mark.engine_independent


async def test_a_moderator_redaction_of_a_ghost_message_is_not_sent_without_the_capability(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        await give_power(bridge, room_id, alice.user_id, 50)
        await client.remote_message(chat, "bob", "bob's words")
        target = await alice.wait_for_event(room_id, body_is("bob's words"))
        await alice.redact(room_id, target["event_id"])
        after = await alice.send_text(room_id, "after the redaction")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == after)
        assert not [i for i in net.sent if i.kind == "redaction"]
