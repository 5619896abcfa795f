"""Reactions both ways: unicode by Slack name, custom workspace emoji as images (MSC4027),
never doubled (redelivered, or reported to two app logins): fake Slack (real slack-sdk) <->
bridge <-> real Synapse."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest

from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, login_app, login_user, open_channel
from tests.slack.test_e2e_threads import redacting, rel

pytestmark = pytest.mark.engine_independent

SHORTCODE = "com.beeper.reaction.shortcode"


def reaction_on(target: str, sender: str | None = None) -> Any:
    return lambda e: (
        e.get("type") == "m.reaction"
        and rel(e).get("event_id") == target
        and (sender is None or e["sender"] == sender)
    )


async def reactions(admin: Any, room_id: str, target: str) -> list[dict[str, Any]]:
    return [e for e in await admin.messages(room_id) if reaction_on(target)(e)]


async def marker(admin: Any, world: Any, room_id: str, text: str) -> None:
    world.fake.post_user_message(world.general.id, world.bob.id, text)
    await admin.wait_for_event(room_id, body_is(text))


async def test_slack_reactions_reach_matrix_as_unicode_and_are_removed(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    fake.add_emoji(w.team.id, "yes", alias_for="+1")  # a workspace alias of a standard emoji
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        msg = fake.post_user_message(w.general.id, w.bob.id, "react to me")
        target = (await admin.wait_for_event(room_id, body_is("react to me")))["event_id"]
        fake.add_reaction(w.general.id, msg.ts, w.alice.id, "+1::skin-tone-3")
        fake.add_reaction(w.general.id, msg.ts, w.bob.id, "yes")
        alice = await admin.wait_for_event(room_id, reaction_on(target, w.ghost(w.alice)))
        bob = await admin.wait_for_event(room_id, reaction_on(target, w.ghost(w.bob)))
        assert rel(alice)["key"] == "👍🏼"
        assert rel(bob)["key"] == "👍"
        fake.remove_reaction(w.general.id, msg.ts, w.alice.id, "+1::skin-tone-3")
        fake.remove_reaction(w.general.id, msg.ts, w.bob.id, "yes")
        await admin.wait_for_event(room_id, redacting(alice["event_id"]))
        await admin.wait_for_event(room_id, redacting(bob["event_id"]))


async def test_custom_emoji_reactions_both_ways(slack_bridge, slack_world, bridge_env, uid):
    w, fake = slack_world, slack_world.fake
    fake.add_emoji(w.team.id, "partyparrot", b"\x89PNG\r\n\x1a\nparrot")
    fake.add_emoji(w.team.id, "pp", alias_for="partyparrot")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        msg = fake.post_user_message(w.general.id, w.bob.id, "party")
        target = (await admin.wait_for_event(room_id, body_is("party")))["event_id"]
        fake.add_reaction(w.general.id, msg.ts, w.alice.id, "partyparrot")
        fake.add_reaction(w.general.id, msg.ts, w.bob.id, "pp")
        alice = await admin.wait_for_event(room_id, reaction_on(target, w.ghost(w.alice)))
        bob = await admin.wait_for_event(room_id, reaction_on(target, w.ghost(w.bob)))
        key = rel(alice)["key"]
        assert key.startswith("mxc://") and rel(bob)["key"] == key  # the alias is the same image
        assert alice["content"][SHORTCODE] == ":partyparrot:"
        async with aiohttp.ClientSession() as http:
            async with http.get(await slack_bridge.media_url(key)) as resp:
                assert await resp.read() == b"\x89PNG\r\n\x1a\nparrot"
        assert len(fake.calls("emoji.list")) == 1  # cached for the second reaction
        fake.remove_reaction(w.general.id, msg.ts, w.bob.id, "pp")
        await admin.wait_for_event(room_id, redacting(bob["event_id"]))
        # Matrix -> Slack: the same image reacts with the emoji's Slack name
        mine = await admin.react(room_id, target, key)
        await eventually(lambda: w.team.bot_user_id in msg.reactions.get("partyparrot", []))
        await admin.redact(room_id, mine)
        await eventually(lambda: w.team.bot_user_id not in msg.reactions.get("partyparrot", []))


async def test_matrix_reactions_reach_slack_and_do_not_come_back(
    slack_bridge, slack_world, bridge_env, uid
):
    """The app's owner reacts as the app, a user with a personal login as their Slack user;
    Slack reports both back, which must not react again on Matrix."""
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice_mx = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice_mx:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        await login_user(slack_bridge, alice_mx, w, w.alice)
        await admin.invite(room_id, alice_mx.user_id)
        await alice_mx.join(room_id)
        msg = fake.post_user_message(w.general.id, w.bob.id, "like me")
        target = (await admin.wait_for_event(room_id, body_is("like me")))["event_id"]
        mine = await admin.react(room_id, target, "👍")
        await admin.react(room_id, target, "🎉")
        await eventually(lambda: set(msg.reactions) == {"+1", "tada"})
        add = fake.calls("reactions.add")
        assert [c.params["name"] for c in add] == ["+1", "tada"]
        assert add[0].params["timestamp"] == msg.ts
        await admin.redact(room_id, mine)
        await eventually(lambda: set(msg.reactions) == {"tada"})
        # Slack's answer comes after its event: the echo is recognised all the same
        fake.answer_late("reactions.add", 1.5)
        fake.answer_late("reactions.remove", 1.5)
        hers = await alice_mx.react(room_id, target, "🚀")
        await eventually(lambda: msg.reactions.get("rocket") == [w.alice.id])
        await marker(admin, w, room_id, "after")
        # only those sent on Matrix (one since redacted): Slack's reaction_added for them is
        # not bridged back
        sent = [e for e in await admin.messages(room_id) if e["type"] == "m.reaction"]
        assert [e["sender"] for e in sent] == [admin.user_id, admin.user_id, alice_mx.user_id]
        assert [rel(e).get("key") for e in await reactions(admin, room_id, target)] == ["🎉", "🚀"]
        await alice_mx.redact(room_id, hers)
        await eventually(lambda: "rocket" not in msg.reactions)
        await marker(admin, w, room_id, "after the removal")
        assert [rel(e).get("key") for e in await reactions(admin, room_id, target)] == ["🎉"]


async def test_one_slack_reaction_reaches_matrix_once(slack_bridge, slack_world, bridge_env, uid):
    """Redelivered (same event id, also after the in-memory memory is gone) and reported to
    two app logins of the workspace (each with its own event id): one Matrix reaction."""
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    admin2 = await bridge_env.synapse.register_user(uid("admin2"))
    async with admin, admin2:
        first = await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        second = await login_app(slack_bridge, admin2, w)
        msg = fake.post_user_message(w.general.id, w.bob.id, "once")
        target = (await admin.wait_for_event(room_id, body_is("once")))["event_id"]
        payload = fake.add_reaction(w.general.id, msg.ts, w.alice.id, "heart")
        await admin.wait_for_event(room_id, reaction_on(target, w.ghost(w.alice)))
        # Socket Mode redelivers the envelope (its ack was lost)
        env = fake.envelope_for(payload)
        await eventually(lambda: env.acked)
        env.acked = False
        assert fake.redeliver_unacked() >= 1
        await eventually(lambda: env.acked and env.sent == 2)
        # the same, once the bridge no longer remembers the event id (as after a restart)
        connector(slack_bridge)._seen.clear()
        env.acked = False
        assert fake.redeliver_unacked() >= 1
        await eventually(lambda: env.acked and env.sent == 3)
        # the same reaction reported to both app logins, each delivery with its own event id
        for client in (first, second):
            again = copy.deepcopy(payload)
            again["event_id"] = f"Ev{uid('x').upper()}"
            await connector(slack_bridge).receive(client, again)
        await marker(admin, w, room_id, "after the deliveries")
        got = await reactions(admin, room_id, target)
        assert len(got) == 1 and rel(got[0])["key"] == "❤️"
