"""A MUC's occupants after the bridge's join are a complete member list: an occupant who left
while the bridge was stopped has their ghost leave once it is back; Matrix users and another
network's ghost in the room stay."""

from __future__ import annotations

from bridgekit.bridge import Bridge
from tests.conftest import SERVER_NAME, eventually
from tests.harness.prosody import Prosody
from tests.xmpp.conftest import alias, body_is, ghost, xmpp_networks


async def _joined(alice, room_id: str) -> set[str]:
    return set(await alice.joined_members(room_id))


async def _online(bridge: Bridge) -> Bridge:
    assert await bridge.connectors["xmpp"].component.wait_online(15)
    return bridge


async def test_occupant_gone_while_the_bridge_was_stopped_leaves_after_it_restarts(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bridge = await _online(await make_bridge(networks=xmpp_networks(prosody)))
    bob = await xmpp_clients(prosody, uid("bob"))
    carol = await xmpp_clients(prosody, uid("carol"))
    room = f"{uid('room')}@{prosody.muc}"
    await bob.join(room, "Bob")
    await carol.join(room, "Carol")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        room_id = await alice.join(alias(room))
        wanted = {ghost(f"{room}/Bob"), ghost(f"{room}/Carol")}

        async def both_in() -> bool:
            return wanted <= await _joined(alice, room_id)

        await eventually(both_in, timeout=30)
        other = f"@_fake_{uid('x')}:{SERVER_NAME}"  # another network's ghost in the room
        await bridge.matrix.intent(other).ensure_joined(room_id)

        await make_bridge.stop(bridge)
        await carol.close()  # leaves the MUC while nobody bridges it
        bridge = await _online(await make_bridge(networks=xmpp_networks(prosody)))

        carol_left = await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == ghost(f"{room}/Carol")
                and e["content"].get("membership") == "leave"
            ),
            timeout=40,
        )
        assert carol_left["sender"] == ghost(f"{room}/Carol")
        bob.say(room, "after the restart")
        await alice.wait_for_event(room_id, body_is("after the restart"), timeout=30)
        joined = await _joined(alice, room_id)
        assert ghost(f"{room}/Carol") not in joined
        assert {alice.user_id, bridge.bot_mxid, ghost(f"{room}/Bob"), other} <= joined
