"""``ping`` shows each login's state and, where the connector said why, the reason (a
disconnect's cause, or what is amiss while connected: a Discord bot without the Message
Content intent, tests/discord/test_e2e_intents.py)."""

from __future__ import annotations

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.helpers import login, management_room

pytestmark = pytest.mark.engine_independent


async def test_ping_shows_the_state_and_its_reason(bridge, bridge_env, uid):
    user = await bridge_env.synapse.register_user(uid("pinger"))
    async with user:
        conv = await management_room(user, bridge)
        client = await login(bridge, user, "pinger-remote")
        login_id = client.login.id
        await eventually(lambda: bridge.login_states[login_id].state == BridgeStateEvent.CONNECTED)
        pong = await conv.say("ping")
        assert "fake pinger-remote: CONNECTED" in pong and "(" not in pong
        bridge.logins.report_state(
            login_id, BridgeStateEvent.CONNECTED, "the network asks for something to be enabled"
        )
        pong = await conv.say("ping")
        assert "CONNECTED (the network asks for something to be enabled)" in pong
