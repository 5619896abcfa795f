"""``start-chat slack <who>`` opens a DM through the person's own Slack login (a user id,
@handle, email or ghost), then messages go both ways. Fake Slack <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from bridges.slack.ids import portal_key
from tests.conftest import eventually
from tests.helpers import management_room
from tests.slack.conftest import body_is, login_app, login_user

pytestmark = pytest.mark.engine_independent


async def test_start_chat_opens_a_dm(slack_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    w = slack_world
    carol = fake.add_user(w.team.id, "carol", real_name="Carol Singer", email="carol@acme.test")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(slack_bridge, admin, w)
        conv = await management_room(alice, slack_bridge)
        # Without a personal login there is no DM to open.
        assert "login slack user" in await conv.say("start-chat slack @bob")
        own = await login_user(slack_bridge, alice, w, w.alice)
        answer = await conv.say("start-chat slack @bob")
        assert "Bob Builder" in answer and w.ghost(w.bob) in answer
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        opened = fake.calls("conversations.open")[-1]
        assert opened.token == fake.user_token(w.alice.id) and opened.params["users"] == w.bob.id
        dm = next(
            c.id for c in fake.conversations.values() if c.kind == "im" and w.bob.id in c.members
        )
        portal = await slack_bridge.store.get_portal(
            "slack", portal_key(w.team.id, dm, own.login.id)
        )
        assert portal is not None and portal.mxid == room_id and portal.is_dm

        async def bob_is_there() -> bool:
            return w.ghost(w.bob) in await alice.joined_members(room_id)

        await eventually(bob_is_there)
        # Both ways.
        await alice.send_text(room_id, "hello bob")
        await eventually(lambda: any(m.text == "hello bob" for m in fake.messages[dm]))
        fake.post_user_message(dm, w.bob.id, "hello alice")
        await alice.wait_for_event(room_id, body_is("hello alice"))
        # The same DM again, by user id: no second room.
        assert room_id in await conv.say(f"start-chat slack {w.bob.id}")
        # By email, and by the ghost's Matrix id.
        assert "Carol Singer" in await conv.say("start-chat slack carol@acme.test")
        assert "Carol Singer" in await conv.say(f"start-chat slack {w.ghost(carol)}")
        # Nobody of that name.
        assert "no slack user" in (await conv.say("start-chat slack @nobody")).lower()
        assert "no slack user" in (await conv.say("start-chat slack nobody@acme.test")).lower()
        assert "not a valid" in await conv.say("start-chat slack two words")
        assert "not a valid" in await conv.say(f"start-chat slack {admin.user_id}")
