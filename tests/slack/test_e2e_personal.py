"""Personal logins (xoxp- user tokens): a Matrix user with one speaks on Slack as their own
Slack user (true puppeting), and their own Slack messages reach Matrix from their Matrix
account (double puppeting), never bridged back. Fake Slack <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.slack.conftest import body_is, login_app, login_user, open_channel

pytestmark = pytest.mark.engine_independent

DP_KEY = "fi.mau.double_puppet_source"


async def test_personal_login_sends_as_the_slack_user(dp_bridge, slack_world, bridge_env, uid):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, slack_world)
        await login_user(dp_bridge, alice, slack_world, slack_world.alice)
        room_id = await open_channel(
            dp_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        await admin.invite(room_id, alice.user_id)
        await alice.join(room_id)
        await alice.send_text(room_id, "typed on matrix")
        fake = slack_world.fake
        general = slack_world.general.id
        await eventually(lambda: any(m.text == "typed on matrix" for m in fake.messages[general]))
        sent = next(m for m in fake.messages[general] if m.text == "typed on matrix")
        # Slack shows it from Alice's own Slack user: no bot, no name override.
        assert sent.user == slack_world.alice.id
        assert sent.bot_id is None and sent.username is None and sent.subtype is None
        call = next(c for c in fake.calls("chat.postMessage") if c.params["text"] == sent.text)
        assert call.token == fake.user_token(slack_world.alice.id)
        assert "username" not in call.params and "icon_url" not in call.params
        # Slack sends the message back to the app as Alice's: it is not bridged a second time.
        fake.post_user_message(general, slack_world.bob.id, "after it")
        await admin.wait_for_event(room_id, body_is("after it"))
        events = await admin.messages(room_id)
        bodies = [e["content"].get("body") for e in events if e["type"] == "m.room.message"]
        assert bodies.count("typed on matrix") == 1


async def test_own_slack_message_comes_from_the_matrix_account(
    dp_bridge, slack_world, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, slack_world)
        await login_user(dp_bridge, alice, slack_world, slack_world.alice)
        room_id = await open_channel(
            dp_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        fake = slack_world.fake
        general = slack_world.general.id
        # Alice writes from her Slack app: on Matrix it is her own account that says it,
        # joined to the room by her double puppet.
        fake.post_user_message(general, slack_world.alice.id, "sent from my phone")
        evt = await admin.wait_for_event(room_id, body_is("sent from my phone"))
        assert evt["sender"] == alice.user_id
        assert evt["content"][DP_KEY] == "bridgekit"
        # The double puppet's event comes back to the bridge: never sent to Slack again.
        fake.post_user_message(general, slack_world.bob.id, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        await eventually(lambda: dp_bridge.inbox.pending == 0)
        assert [m.text for m in fake.messages[general]].count("sent from my phone") == 1
        posted = [c.params.get("text") for c in fake.calls("chat.postMessage")]
        assert "sent from my phone" not in posted
