"""DMs and group DMs of personal logins: each is the login's own portal (receiver = its id),
fed by its own gateway session, with the other people's ghosts in the room; messages both
ways; the account's own messages from the Matrix account; two bridge users in one DM each
have their own room; ``start-chat discord`` opens one. Fake Discord <-> bridge <-> Synapse."""

from __future__ import annotations

import pytest

from bridges.discord.ids import portal_key
from tests.conftest import eventually
from tests.discord.conftest import body_is
from tests.discord.personal_helpers import DP_KEY, bodies, login_user, portal_room
from tests.helpers import management_room

pytestmark = pytest.mark.engine_independent


async def joined(client, room_id: str, mxid: str) -> bool:
    return mxid in await client.joined_members(room_id)


async def test_dm_both_ways_with_the_other_person_as_a_ghost(
    dp_bridge, discord_world, bridge_env, uid
):
    w = discord_world
    fake = w.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        own = await login_user(dp_bridge, alice, fake, w.alice)
        dm = fake.add_dm(w.alice, w.bob)
        await fake.send_message(dm, w.bob, "hi alice")
        room_id = await portal_room(dp_bridge, alice, portal_key(dm.id, own.login.id))
        evt = await alice.wait_for_event(room_id, body_is("hi alice"))
        assert evt["sender"] == w.ghost(w.bob)
        portal = await dp_bridge.store.get_portal("discord", portal_key(dm.id, own.login.id))
        assert portal is not None and portal.mxid == room_id and portal.is_dm
        await eventually(lambda: joined(alice, room_id, w.ghost(w.bob)))
        # Matrix -> Discord: as Alice's own account.
        await alice.send_text(room_id, "hello bob")
        await eventually(lambda: any(m["content"] == "hello bob" for m in fake.messages(dm)))
        sent = fake.messages(dm)[-1]
        assert sent["author"]["id"] == w.alice.id and not sent.get("webhook_id")
        # From Alice's Discord app: her Matrix account says it (double puppet).
        await fake.send_message(dm, w.alice, "from my phone")
        mine = await alice.wait_for_event(room_id, body_is("from my phone"))
        assert mine["sender"] == alice.user_id and mine["content"][DP_KEY] == "bridgekit"
        await fake.send_message(dm, w.bob, "marker")
        await alice.wait_for_event(room_id, body_is("marker"))
        said = bodies(await alice.messages(room_id))
        assert said.count("hello bob") == 1 and said.count("from my phone") == 1
        assert [m["content"] for m in fake.messages(dm)].count("from my phone") == 1


async def test_two_bridge_users_in_one_dm_each_have_their_room(
    dp_bridge, discord_world, bridge_env, uid
):
    w = discord_world
    fake = w.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with alice, bob:
        own_a = await login_user(dp_bridge, alice, fake, w.alice)
        own_b = await login_user(dp_bridge, bob, fake, w.bob)
        dm = fake.add_dm(w.alice, w.bob)
        fake.echo_before_reply = True
        await fake.send_message(dm, w.bob, "opening")
        alice_room = await portal_room(dp_bridge, alice, portal_key(dm.id, own_a.login.id))
        bob_room = await portal_room(dp_bridge, bob, portal_key(dm.id, own_b.login.id))
        assert alice_room != bob_room
        # Bob's own message: his Matrix account in his room, his ghost in Alice's.
        assert (await alice.wait_for_event(alice_room, body_is("opening")))["sender"] == (
            w.ghost(w.bob)
        )
        assert (await bob.wait_for_event(bob_room, body_is("opening")))["sender"] == bob.user_id
        # Alice writes on Matrix: Discord has it once, from her; Bob's room shows it from her
        # ghost (her echo is dropped only in her own room).
        await alice.send_text(alice_room, "from alice's matrix")
        theirs = await bob.wait_for_event(bob_room, body_is("from alice's matrix"))
        assert theirs["sender"] == w.ghost(w.alice)
        await fake.send_message(dm, w.bob, "marker")
        await alice.wait_for_event(alice_room, body_is("marker"))
        assert bodies(await alice.messages(alice_room)).count("from alice's matrix") == 1
        assert [m["content"] for m in fake.messages(dm)].count("from alice's matrix") == 1


async def test_group_dm_has_its_name_and_people(dp_bridge, discord_world, bridge_env, uid):
    w = discord_world
    fake = w.fake
    carol = fake.add_user("carol", global_name="Carol Singer")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        own = await login_user(dp_bridge, alice, fake, w.alice)
        unnamed = fake.add_group_dm(w.bob, w.alice, carol)
        await fake.send_message(unnamed, carol, "hello all")
        room_id = await portal_room(dp_bridge, alice, portal_key(unnamed.id, own.login.id))
        evt = await alice.wait_for_event(room_id, body_is("hello all"))
        assert evt["sender"] == w.ghost(carol)
        name = await alice.get_state(room_id, "m.room.name")
        assert name["name"] == "Bob Builder, Carol Singer"
        for person in (w.bob, carol):
            await eventually(lambda p=person: joined(alice, room_id, w.ghost(p)))
        await alice.send_text(room_id, "hello group")
        await eventually(lambda: any(m["content"] == "hello group" for m in fake.messages(unnamed)))
        assert fake.messages(unnamed)[-1]["author"]["id"] == w.alice.id
        named = fake.add_group_dm(w.bob, w.alice, carol, name="Plotters")
        await fake.send_message(named, w.bob, "named one")
        other_room = await portal_room(dp_bridge, alice, portal_key(named.id, own.login.id))
        await alice.wait_for_event(other_room, body_is("named one"))
        assert (await alice.get_state(other_room, "m.room.name"))["name"] == "Plotters"


async def test_start_chat_opens_a_dm(dp_bridge, discord_world, bridge_env, uid):
    w = discord_world
    fake = w.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, dp_bridge)
        # Without a personal login there is no DM to open.
        assert "login discord user" in await conv.say(f"start-chat discord {w.bob.id}")
        own = await login_user(dp_bridge, alice, fake, w.alice)
        answer = await conv.say(f"start-chat discord {w.bob.id}")
        assert "Bob Builder" in answer and w.ghost(w.bob) in answer, answer
        dm = fake.add_dm(w.alice, w.bob)  # the one Discord opened
        room_id = await portal_room(dp_bridge, alice, portal_key(dm.id, own.login.id))
        [opened] = fake.requests_to("POST", "/users/@me/channels")
        assert opened.json == {"recipient_id": int(w.bob.id)} or opened.json == {
            "recipient_id": w.bob.id
        }
        assert opened.headers["Authorization"] == w.alice.token
        portal = await dp_bridge.store.get_portal("discord", portal_key(dm.id, own.login.id))
        assert portal is not None and portal.mxid == room_id and portal.is_dm
        await eventually(lambda: joined(alice, room_id, w.ghost(w.bob)))
        await alice.send_text(room_id, "hello via start-chat")
        await eventually(
            lambda: any(m["content"] == "hello via start-chat" for m in fake.messages(dm))
        )
        await fake.send_message(dm, w.bob, "answer")
        await alice.wait_for_event(room_id, body_is("answer"))
        # The same DM again, by the ghost's Matrix id and as a mention: no second room.
        assert room_id in await conv.say(f"start-chat discord {w.ghost(w.bob)}")
        assert room_id in await conv.say(f"start-chat discord <@{w.bob.id}>")
        # Nobody, or not an identifier.
        assert "no discord user" in (await conv.say("start-chat discord 123456789")).lower()
        assert "not a valid" in await conv.say("start-chat discord bob")
        assert "not a valid" in await conv.say(f"start-chat discord {alice.user_id}")
        assert "not a valid" in await conv.say(f"start-chat discord {w.alice.id}")
