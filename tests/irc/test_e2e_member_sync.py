"""IRC NAMES is a complete member list: nicks that left the channel while the bridge was not
watching (stopped, or its connection down) have their ghosts leave once it is back, and
channel modes map to power levels in one power-levels event."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import eventually
from tests.harness.inspircd import InspIRCd, IrcTestClient, require_inspircd
from tests.irc.e2e import (
    SERVER,
    body_is,
    channel_scene,
    connector,
    ghost,
    irc_user,
    is_puppet_join,
    member_event,
    open_channel,
    start_bridge,
)


async def _joined(alice: Any, room_id: str) -> set[str]:
    return set(await alice.joined_members(room_id))


def _power_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "m.room.power_levels"]


async def test_nicks_gone_while_the_bridge_was_stopped_leave_after_it_restarts(
    make_bridge, ircd, bridge_env, uid
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        alice, bob, channel = scene.alice, scene.bob, scene.channel
        carol = await scene.irc_user("carol")
        dave = await scene.irc_user("dave")
        await bob.send_line("MODE", channel, "+v", dave.nick)
        room_id = await scene.open()

        async def all_in() -> bool:
            wanted = {ghost(bob.nick), ghost(carol.nick), ghost(dave.nick)}
            return wanted <= await _joined(alice, room_id)

        await eventually(all_in, timeout=30)
        levels = (await alice.get_state(room_id, "m.room.power_levels"))["users"]
        assert levels[ghost(bob.nick)] == 50 and levels[ghost(dave.nick)] == 1

        await make_bridge.stop(scene.bridge)
        await carol.send_line("QUIT", "while nobody watched")
        await bob.send_line("MODE", channel, "-v", dave.nick)
        erin = await scene.irc_user("erin")
        await bob.send_line("MODE", channel, "+o", erin.nick)
        before = len(_power_events(await alice.messages(room_id, 300)))

        scene.bridge = await start_bridge(make_bridge, ircd)
        await bob.wait_for(is_puppet_join(channel), 30)
        left = await alice.wait_for_event(room_id, member_event(ghost(carol.nick), "leave"), 30)
        assert left["sender"] == ghost(carol.nick)
        await alice.wait_for_event(room_id, member_event(ghost(erin.nick), "join"), 30)
        await bob.privmsg(channel, "after the restart")
        await alice.wait_for_event(room_id, body_is("after the restart"), 30)

        joined = await _joined(alice, room_id)
        assert ghost(carol.nick) not in joined
        assert {alice.user_id, scene.bridge.bot_mxid, ghost(bob.nick), ghost(dave.nick)} <= joined
        events = _power_events(await alice.messages(room_id, 300))
        assert len(events) == before + 1, "the list's levels in one power-levels event"
        users = events[-1]["content"]["users"]
        assert users[ghost(bob.nick)] == 50 and users[ghost(erin.nick)] == 50
        assert ghost(dave.nick) not in users and ghost(carol.nick) not in users


async def test_a_nick_gone_while_the_connection_was_down_leaves_after_the_reconnect(
    make_bridge, bridge_env, uid, tmp_path
):
    require_inspircd()
    server = InspIRCd(tmp_path / "ircd", flood_control=False)
    await asyncio.to_thread(server.start)
    users: list[IrcTestClient] = []
    try:
        bridge = await start_bridge(
            make_bridge, server, reconnect={"concurrency": 1, "min_delay": 0.3, "max_delay": 1}
        )
        alice = await bridge_env.synapse.register_user(uid("alice"))
        channel = "#" + uid("chan")
        bob_nick, carol_nick = uid("bob"), uid("carol")
        users.append(await irc_user(server, bob_nick, channel))
        users.append(await irc_user(server, carol_nick, channel))
        async with alice:
            room_id, _ = await open_channel(alice, channel, users[0])

            async def carol_in() -> bool:
                return ghost(carol_nick) in await _joined(alice, room_id)

            await eventually(carol_in, timeout=30)
            # The server goes away under everyone: the bridge sees no QUIT of carol's.
            await asyncio.to_thread(server.stop)
            for user in users:
                await user.close()
            users.clear()
            # Hold the bridge's reconnect (concurrency 1) until bob alone is back in.
            semaphore = connector(bridge).semaphore(SERVER)
            await semaphore.acquire()
            try:
                await asyncio.to_thread(server.start)
                users.append(await irc_user(server, bob_nick, channel))
            finally:
                semaphore.release()
            await users[0].wait_for(is_puppet_join(channel), 30)
            await alice.wait_for_event(room_id, member_event(ghost(carol_nick), "leave"), 30)
            await users[0].privmsg(channel, "after the reconnect")
            await alice.wait_for_event(room_id, body_is("after the reconnect"), 30)
            joined = await _joined(alice, room_id)
            assert ghost(carol_nick) not in joined
            assert {alice.user_id, bridge.bot_mxid, ghost(bob_nick)} <= joined
    finally:
        for user in users:
            await user.close()
        await asyncio.to_thread(server.stop)
