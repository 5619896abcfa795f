"""Membership, nicks, topics and channel modes between IRC and Matrix."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import eventually
from tests.irc.e2e import channel_scene, connector, ghost, member_event, privmsg_from

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def power_of(client, room_id: str, user_id: str) -> int:
    pls = await client.get_state(room_id, "m.room.power_levels")
    return int(pls.get("users", {}).get(user_id, pls.get("users_default", 0)))


async def test_irc_membership_nicks_topic_and_modes(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        alice, bob, channel = scene.alice, scene.bob, scene.channel
        await bob.send_line("TOPIC", channel, "the first topic")
        room_id = await scene.open()
        # NAMES sync: the operator is there with power level 50, the topic is set.
        await alice.wait_for_event(room_id, member_event(ghost(bob.nick), "join"))
        await eventually(lambda: power_of(alice, room_id, ghost(bob.nick)), timeout=15)
        assert await power_of(alice, room_id, ghost(bob.nick)) == 50
        topic = await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.topic")
        assert topic["content"]["topic"] == "the first topic"
        carol = await scene.irc_user("Carol")
        await alice.wait_for_event(room_id, member_event(ghost(carol.nick), "join"))
        # +v -> power level 1
        await bob.send_line("MODE", channel, "+v", carol.nick)

        async def voiced() -> bool:
            return await power_of(alice, room_id, ghost(carol.nick)) == 1

        await eventually(voiced, timeout=15)
        # TOPIC
        await bob.send_line("TOPIC", channel, "a new topic")
        await alice.wait_for_event(
            room_id,
            lambda e: e["type"] == "m.room.topic" and e["content"].get("topic") == "a new topic",
        )
        # NICK: case-only change keeps the ghost and renames it; a new nick is a new ghost
        old = carol.nick
        await carol.send_line("NICK", old.lower())
        await eventually(lambda: _displayname(alice, ghost(old)), timeout=15)
        new = uid("dave")
        await carol.send_line("NICK", new)
        await alice.wait_for_event(room_id, member_event(ghost(old), "leave"))
        await alice.wait_for_event(room_id, member_event(ghost(new), "join"))
        # PART
        await carol.send_line("PART", channel, "bye now")
        left = await alice.wait_for_event(room_id, member_event(ghost(new), "leave"))
        assert left["content"].get("reason") == "bye now"
        # QUIT
        erin = await scene.irc_user("erin")
        await alice.wait_for_event(room_id, member_event(ghost(erin.nick), "join"))
        await erin.close("gone fishing")
        await alice.wait_for_event(room_id, member_event(ghost(erin.nick), "leave"))
        # KICK
        frank = await scene.irc_user("frank")
        await alice.wait_for_event(room_id, member_event(ghost(frank.nick), "join"))
        await bob.send_line("KICK", channel, frank.nick, "behave")
        kicked = await alice.wait_for_event(room_id, member_event(ghost(frank.nick), "leave"))
        assert kicked["sender"] != ghost(frank.nick)  # removed by someone else: a kick


async def _displayname(client, user_id: str) -> bool:
    profile = await client.get_profile(user_id)
    return profile.get("displayname") == profile.get("displayname", "").lower() and bool(
        profile.get("displayname")
    )


async def test_matrix_kick_becomes_irc_kick_only_with_ops(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        bridge, alice, bob, channel = scene.bridge, scene.alice, scene.bob, scene.channel
        carol = await scene.irc_user("carol")
        dave = await scene.irc_user("dave")
        room_id = await scene.open()
        puppet = scene.puppet
        for user in (carol, dave):
            await alice.wait_for_event(room_id, member_event(ghost(user.nick), "join"))
        bot = bridge.matrix.bot
        pls = await bot.get_power_levels(room_id)
        pls.set_user_level(alice.user_id, 50)
        await bot.set_power_levels(room_id, pls)
        await asyncio.sleep(0.5)
        # Without ops on IRC the kick stays on Matrix.
        await alice.request(
            "POST", f"/rooms/{room_id}/kick", {"user_id": ghost(dave.nick), "reason": "no"}
        )
        await alice.wait_for_event(room_id, member_event(ghost(dave.nick), "leave"))
        await asyncio.sleep(1.5)  # the bridge has handled the kick by now
        # With ops it reaches IRC.
        await bob.send_line("MODE", channel, "+o", puppet)
        client = next(iter(connector(bridge).clients.values()))
        await eventually(lambda: client.has_ops(channel), timeout=15)
        await alice.request(
            "POST", f"/rooms/{room_id}/kick", {"user_id": ghost(carol.nick), "reason": "out"}
        )
        kick = await carol.wait_for(lambda m: m.command == "KICK", 15)
        assert kick.nick == puppet and kick.params[1] == carol.nick and kick.params[2] == "out"
        # Matrix topic -> IRC TOPIC (the puppet is an operator now)
        await alice.send_state(room_id, "m.room.topic", "", {"topic": "set from Matrix"})
        got = await bob.wait_for(lambda m: m.command == "TOPIC", 15)
        assert got.nick == puppet and got.params[1] == "set from Matrix"
        assert not any(m.command == "KICK" and m.param(1) == dave.nick for m in dave.history)


async def test_a_refused_line_is_reported_and_does_not_stall_the_room(
    make_bridge, ircd, bridge_env, uid
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        await bob.send_line("MODE", channel, "+m")  # moderated: the puppet may not speak
        await bob.wait_for(lambda m: m.command == "MODE" and "+m" in m.params, 15)
        await alice.send_text(room_id, "muted words")
        notice = await alice.wait_for_event(
            room_id,
            lambda e: "not delivered" in e.get("content", {}).get("body", ""),
            timeout=15,
        )
        assert channel.lower() in notice["content"]["body"].lower()
        await bob.send_line("MODE", channel, "-m")
        await bob.wait_for(lambda m: m.command == "MODE" and "-m" in m.params, 15)
        started = asyncio.get_running_loop().time()
        await alice.send_text(room_id, "heard again")
        await bob.wait_for(privmsg_from(puppet, "heard again"), 15)
        # Well under the 10 s echo timeout the refused line used to hold the room for.
        assert asyncio.get_running_loop().time() - started < 5
