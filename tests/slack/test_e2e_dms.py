"""DMs and group DMs: each is a portal of the login of the bridge user in it (personal login,
or the app login for a DM with the bot), both ways. Slack delivers a DM's events to the app
through its user-scope subscriptions (``message.im``/``message.mpim``) for users who
authorised it. Fake Slack <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from bridgekit.contract.events import PortalKey
from bridges.slack.ids import portal_key
from tests.conftest import eventually
from tests.slack.conftest import body_is, login_app, login_user
from tests.slack.test_e2e_personal import DP_KEY

pytestmark = pytest.mark.engine_independent


async def _portal(bridge, key: PortalKey):
    portal = await bridge.store.get_portal("slack", key)
    assert portal is not None and portal.mxid
    return portal


async def test_dm_both_ways(dp_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    w = slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, w)
        own = await login_user(dp_bridge, alice, w, w.alice)
        dm = fake.add_conversation(
            w.team.id, kind="im", members=[w.bob.id, w.alice.id], with_bot=False
        )
        fake.post_user_message(dm.id, w.bob.id, "psst")
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        evt = await alice.wait_for_event(room_id, body_is("psst"))
        assert evt["sender"] == w.ghost(w.bob)
        portal = await _portal(dp_bridge, portal_key(w.team.id, dm.id, own.login.id))
        assert portal.mxid == room_id and portal.is_dm
        assert set(await alice.joined_members(room_id)) >= {alice.user_id, w.ghost(w.bob)}
        # Matrix -> Slack: sent with Alice's own token, to the DM.
        await alice.send_text(room_id, "back to you")
        await eventually(lambda: any(m.text == "back to you" for m in fake.messages[dm.id]))
        sent = next(m for m in fake.messages[dm.id] if m.text == "back to you")
        assert sent.user == w.alice.id and sent.bot_id is None
        # Alice's own Slack message in the DM: from her Matrix account.
        fake.post_user_message(dm.id, w.alice.id, "from my phone")
        mine = await alice.wait_for_event(room_id, body_is("from my phone"))
        assert mine["sender"] == alice.user_id and mine["content"][DP_KEY] == "bridgekit"
        fake.post_user_message(dm.id, w.bob.id, "marker")
        await alice.wait_for_event(room_id, body_is("marker"))
        bodies = [e["content"].get("body") for e in await alice.messages(room_id)]
        assert bodies.count("back to you") == 1 and bodies.count("from my phone") == 1
        # Nor do Alice's own lines go back to Slack from her double puppet.
        assert [m.text for m in fake.messages[dm.id]].count("from my phone") == 1
        # Nobody else was let into Alice's DM: the app's owner got no invite.
        assert admin.user_id not in await alice.joined_members(room_id)
        with pytest.raises(TimeoutError):
            await admin.wait_for_invite(timeout=1)


async def test_group_dm(dp_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    w = slack_world
    carol = fake.add_user(w.team.id, "carol", real_name="Carol Singer")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, w)
        own = await login_user(dp_bridge, alice, w, w.alice)
        group = fake.add_conversation(
            w.team.id, kind="mpim", members=[w.alice.id, w.bob.id, carol.id], with_bot=False
        )
        fake.post_user_message(group.id, carol.id, "hello both")
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        evt = await alice.wait_for_event(room_id, body_is("hello both"))
        assert evt["sender"] == w.ghost(carol)
        portal = await _portal(dp_bridge, portal_key(w.team.id, group.id, own.login.id))
        assert portal.mxid == room_id and not portal.is_dm
        name = await alice.get_state(room_id, "m.room.name")
        assert name["name"] == "Bob Builder, Carol Singer"
        await alice.send_text(room_id, "hi all")
        await eventually(lambda: any(m.text == "hi all" for m in fake.messages[group.id]))
        sent = next(m for m in fake.messages[group.id] if m.text == "hi all")
        assert sent.user == w.alice.id


async def test_dm_with_the_bot_goes_to_the_app_login(dp_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    w = slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        app = await login_app(dp_bridge, admin, w)
        dm = fake.add_conversation(w.team.id, kind="im", members=[w.bob.id])  # bob and the bot
        fake.post_user_message(dm.id, w.bob.id, "hello bot")
        room_id, _ = await admin.wait_for_invite()
        await admin.join(room_id)
        evt = await admin.wait_for_event(room_id, body_is("hello bot"))
        assert evt["sender"] == w.ghost(w.bob)
        portal = await _portal(dp_bridge, portal_key(w.team.id, dm.id, app.login.id))
        assert portal.mxid == room_id and portal.is_dm


async def test_dm_between_two_bridge_users(dp_bridge, slack_world, bridge_env, uid):
    """Each has their own portal; a message is "mine" (double puppet) only in the sender's."""
    fake = slack_world.fake
    w = slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with admin, alice, bob:
        await login_app(dp_bridge, admin, w)
        a_login = await login_user(dp_bridge, alice, w, w.alice)
        b_login = await login_user(dp_bridge, bob, w, w.bob)
        dm = fake.add_conversation(
            w.team.id, kind="im", members=[w.alice.id, w.bob.id], with_bot=False
        )
        fake.post_user_message(dm.id, w.alice.id, "hi bob")
        bob_room, _ = await bob.wait_for_invite()
        await bob.join(bob_room)
        in_bobs = await bob.wait_for_event(bob_room, body_is("hi bob"))
        assert in_bobs["sender"] == w.ghost(w.alice)
        alice_portal = await _portal(dp_bridge, portal_key(w.team.id, dm.id, a_login.login.id))
        bob_portal = await _portal(dp_bridge, portal_key(w.team.id, dm.id, b_login.login.id))
        assert bob_portal.mxid == bob_room and alice_portal.mxid != bob_room
        in_alices = await alice.wait_for_event(alice_portal.mxid, body_is("hi bob"))
        assert in_alices["sender"] == alice.user_id
        assert bob.user_id not in await alice.joined_members(alice_portal.mxid)


async def test_dm_event_waits_out_a_failed_members_lookup(dp_bridge, slack_world, bridge_env, uid):
    """Slack failing to say who is in a DM is not "nobody": the envelope is not acknowledged,
    Slack sends it again, and the message arrives once."""
    fake = slack_world.fake
    w = slack_world
    fake.ack_timeout = 1.0
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, w)
        await login_user(dp_bridge, alice, w, w.alice)
        dm = fake.add_conversation(
            w.team.id, kind="im", members=[w.bob.id, w.alice.id], with_bot=False
        )
        fake.fail("conversations.members", "internal_error")
        payload = fake.post_user_message(dm.id, w.bob.id, "second time lucky")
        room_id, _ = await alice.wait_for_invite(timeout=30)
        await alice.join(room_id)
        await alice.wait_for_event(room_id, body_is("second time lucky"))
        [env] = [e for e in fake.envelopes if e.payload["event"].get("ts") == payload.ts]
        assert env.sent >= 2 and env.acked
        bodies = [e["content"].get("body") for e in await alice.messages(room_id)]
        assert bodies.count("second time lucky") == 1


async def test_a_reaction_in_a_dm_reaches_its_portal(dp_bridge, slack_world, bridge_env, uid):
    """Reactions in a DM between people come through the app's user-scope subscriptions
    (``reaction_added`` as a user event), like the DM's messages, to the member's portal."""
    fake = slack_world.fake
    w = slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, w)
        await login_user(dp_bridge, alice, w, w.alice)
        dm = fake.add_conversation(
            w.team.id, kind="im", members=[w.bob.id, w.alice.id], with_bot=False
        )
        msg = fake.post_user_message(dm.id, w.bob.id, "react to this")
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        target = await alice.wait_for_event(room_id, body_is("react to this"))
        fake.add_reaction(dm.id, msg.ts, w.bob.id, "thumbsup")

        def bobs_reaction(e):
            rel = e.get("content", {}).get("m.relates_to") or {}
            return (
                e.get("type") == "m.reaction"
                and rel.get("event_id") == target["event_id"]
                and e.get("sender") == w.ghost(w.bob)
            )

        evt = await alice.wait_for_event(room_id, bobs_reaction, timeout=20)
        assert evt["content"]["m.relates_to"]["key"] == "\N{THUMBS UP SIGN}"
