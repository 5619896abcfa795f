"""Member sync end to end (real Synapse, the fake network): a complete member list makes the
ghosts it no longer holds leave, a partial one only adds, never touching Matrix users; the
members' power levels reach the room in one m.room.power_levels event per list."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.bridge import Bridge
from tests.conftest import BridgeEnv, eventually
from tests.helpers import body_is, ghost, give_power, portal_scene, removed

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


def _joined(members: dict[str, Any]) -> set[str]:
    return set(members)


async def _marker(client: Any, alice: Any, chat: str, room_id: str, text: str) -> None:
    """A message after the resync: once it shows, the resync before it was handled."""
    await client.remote_message(chat, "bob", text)
    await alice.wait_for_event(room_id, body_is(text))


async def test_complete_list_removes_departed_ghosts_partial_list_does_not(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        eve = await bridge_env.synapse.register_user(uid("eve"))
        async with eve:
            await alice.invite(room_id, eve.user_id)
            await eve.join(room_id)
            me = client.login.remote_id
            net.chats[chat].members = [me, "bob", "carol", "dave"]
            await client.resync(chat)  # partial: carol and dave join

            async def all_in() -> bool:
                joined = _joined(await alice.joined_members(room_id))
                return {ghost("carol"), ghost("dave")} <= joined

            await eventually(all_in)

            net.chats[chat].members = [me, "bob"]  # carol and dave left, reported partially
            await client.resync(chat)
            await _marker(client, alice, chat, room_id, "after the partial list")
            joined = _joined(await alice.joined_members(room_id))
            assert {ghost("carol"), ghost("dave")} <= joined, "a partial list only adds"

            net.chats[chat].members_complete = True
            await client.resync(chat)
            await alice.wait_for_event(room_id, removed(ghost("carol")))
            await alice.wait_for_event(room_id, removed(ghost("dave")))
            await _marker(client, alice, chat, room_id, "after the complete list")
            joined = _joined(await alice.joined_members(room_id))
            assert ghost("carol") not in joined and ghost("dave") not in joined
            # Matrix users and the bot stay, as does the ghost still listed.
            assert {alice.user_id, eve.user_id, bridge.bot_mxid, ghost("bob")} <= joined


async def test_power_levels_follow_the_list_in_one_event(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        await give_power(bridge, room_id, alice.user_id, 50)  # an admin's choice: kept
        me = client.login.remote_id
        chat_ = net.chats[chat]
        chat_.members = [me, "bob", "carol", "dave"]
        chat_.members_complete = True
        chat_.power = {"bob": 50, "carol": 1, me: 75}

        def pl_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [e for e in events if e["type"] == "m.room.power_levels"]

        before = len(pl_events(await alice.messages(room_id, 200)))
        await client.resync(chat)
        await _marker(client, alice, chat, room_id, "levels set")
        events = pl_events(await alice.messages(room_id, 200))
        assert len(events) == before + 1, "one power-levels event for the whole list"
        users = events[-1]["content"]["users"]
        assert users[ghost("bob")] == 50 and users[ghost("carol")] == 1
        assert ghost("dave") not in users and ghost(me) not in users  # 0, and not a ghost
        assert users[alice.user_id] == 50

        # bob is deopped and carol leaves: both lose their entries, still in one event.
        chat_.members = [me, "bob", "dave"]
        chat_.power = {"dave": 1}
        await client.resync(chat)
        await _marker(client, alice, chat, room_id, "levels changed")
        events = pl_events(await alice.messages(room_id, 200))
        assert len(events) == before + 2
        users = events[-1]["content"]["users"]
        assert ghost("bob") not in users and ghost("carol") not in users
        assert users[ghost("dave")] == 1 and users[alice.user_id] == 50

        # The same list again changes nothing: no event at all.
        await client.resync(chat)
        await _marker(client, alice, chat, room_id, "levels unchanged")
        assert len(pl_events(await alice.messages(room_id, 200))) == before + 2

        async def bob_still_in() -> bool:
            return ghost("bob") in _joined(await alice.joined_members(room_id))

        await eventually(bob_still_in)


async def test_a_member_who_leaves_while_the_list_is_drip_fed_stays_out(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """The listed ghosts join in the background, one after another; a member who leaves
    meanwhile (its leave handled in the portal's order, before the drip reached it) must not
    be joined afterwards by the older list, which no longer holds it."""
    from bridgekit.contract.events import EventSender, PortalKey, RemoteMembership

    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        me = client.login.remote_id
        crowd = [uid("n") for _ in range(25)]
        net.chats[chat].members = [me, "bob", *crowd]
        await client.resync(chat)  # partial: the crowd is drip-fed in
        gone = crowd[
            len(crowd) // 2
        ]  # the drip, in list order, is done with it once the last is in
        await client.emit(
            RemoteMembership(PortalKey(chat), EventSender(gone), target=gone, membership="leave")
        )
        await _marker(client, alice, chat, room_id, "after the leave")
        at_leave = _joined(await alice.joined_members(room_id))

        async def drip_done() -> bool:
            return ghost(crowd[-1]) in _joined(await alice.joined_members(room_id))

        await eventually(drip_done, timeout=60)
        await _marker(client, alice, chat, room_id, "after the drip")
        assert ghost(gone) not in at_leave, "the test needs the leave before the drip's join"
        assert ghost(gone) not in _joined(await alice.joined_members(room_id))
