"""XMPP: the MUC portals of one MUC service are children of one space named after the
service (its disco#info name), and the Matrix user in them is invited to it (real Prosody and
Synapse), as an IRC server's channels are."""

from __future__ import annotations

from typing import Any

from bridgekit.contract.events import PortalKey
from tests.conftest import eventually
from tests.xmpp.conftest import alias


async def linked_space(bridge: Any, room: str) -> str:
    found: list[str] = []

    async def linked() -> bool:
        found.append(await bridge.spaces.space_of("xmpp", PortalKey(room)) or "")
        return bool(found[-1])

    await eventually(linked, timeout=60)
    return found[-1]


async def test_muc_portals_of_one_service_share_its_space(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob = await xmpp_clients(prosody, uid("bob"))
    rooms = [f"{uid('room')}@{prosody.muc}" for _ in range(2)]
    for room in rooms:
        await bob.join(room, "Bob")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        room_ids = [await alice.join(alias(room)) for room in rooms]
        space = await linked_space(xmpp_bridge, rooms[0])
        assert await linked_space(xmpp_bridge, rooms[1]) == space
        info = await xmpp_bridge.connectors["xmpp"].room_info(rooms[0])
        assert info.parent is not None and info.parent.id == prosody.muc

        await alice.wait_for_event(
            space,
            lambda e: e.get("type") == "m.room.member" and e.get("_stripped_invite_state"),
            timeout=30,
        )
        await alice.join(space)
        assert (await alice.get_state(space, "m.room.create")).get("type") == "m.space"
        name = (await alice.get_state(space, "m.room.name"))["name"]
        assert name == info.parent.name == "Prosody Chatrooms", name
        for room_id in room_ids:
            child = await alice.get_state(space, "m.space.child", room_id)
            assert child["via"] == [xmpp_bridge.domain]
            parent = await alice.get_state(room_id, "m.space.parent", space)
            assert parent["canonical"] is True
        rows = await xmpp_bridge.db.fetch("SELECT space_id FROM space WHERE network='xmpp'")
        assert [r["space_id"] for r in rows] == [prosody.muc]
