"""The Web API calls of the logins share kept-alive connections (slack-sdk would otherwise
open a new connection, and against Slack a TLS session, for every call)."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.slack.conftest import connector, login_app, open_channel

pytestmark = pytest.mark.engine_independent


async def test_matrix_messages_reuse_one_connection(slack_bridge, slack_world, bridge_env, uid):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        fake = slack_world.fake
        for i in range(6):
            await admin.send_text(room_id, f"kept alive {i}")
        await eventually(lambda: len(fake.calls("chat.postMessage")) >= 6, timeout=30)
        peers = {c.peer for c in fake.calls("chat.postMessage")}
        assert None not in peers
        # One after the other: pooled connections carry them (a call the bridge makes at the
        # same time may add a connection to the pool; one per call is what must not happen).
        assert len(peers) <= 2, peers


async def test_the_shared_session_closes_with_the_connector(slack_bridge):
    sessions = connector(slack_bridge).web_sessions
    session = sessions.get()
    assert sessions.get() is session
    await connector(slack_bridge).stop()
    assert session.closed
    assert sessions.get() is not session  # a later call gets a fresh one
    await sessions.close()
