"""IRC: every channel portal of a server is a child of one space named after the server, the
Matrix user is invited to it, and a restart of the bridge makes no second space (real InspIRCd
and Synapse)."""

from __future__ import annotations

from typing import Any

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from bridgekit.testing.matrix_client import MatrixTestClient
from bridges.irc.names import casefold
from tests.conftest import eventually
from tests.irc.e2e import SERVER, channel_scene, open_channel, start_bridge


def key(channel: str) -> PortalKey:
    return PortalKey(f"{SERVER}/{casefold(channel)}")


async def linked_space(bridge: Bridge, channel: str) -> str:
    found: list[str] = []

    async def linked() -> bool:
        space = await bridge.spaces.space_of("irc", key(channel))
        found.append(space or "")
        return bool(space)

    await eventually(linked, timeout=60)
    return found[-1]


def space_invites(user: MatrixTestClient) -> set[str]:
    return {
        rid
        for rid, events in user._history.items()
        if any(
            e.get("type") == "m.room.create"
            and e.get("content", {}).get("type") == "m.space"
            and e.get("_stripped_invite_state")
            for e in events
        )
    }


async def test_channels_of_a_server_share_one_space_across_a_restart(
    make_bridge: Any, ircd: Any, bridge_env: Any, uid: Any
) -> None:
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        bridge, alice, bob = scene.bridge, scene.alice, scene.bob
        second = "#" + uid("chan")
        await bob.join(second)
        second_room, _ = await open_channel(alice, second, bob)
        space = await linked_space(bridge, scene.channel)
        assert await linked_space(bridge, second) == space

        await alice.wait_for_event(
            space, lambda e: e.get("type") == "m.room.member" and e.get("_stripped_invite_state")
        )
        await alice.join(space)
        assert (await alice.get_state(space, "m.room.create")).get("type") == "m.space"
        assert (await alice.get_state(space, "m.room.name"))["name"] == SERVER
        for room in (scene.room_id, second_room):
            child = await alice.get_state(space, "m.space.child", room)
            assert child["via"] == [bridge.domain]
            parent = await alice.get_state(room, "m.space.parent", space)
            assert parent["canonical"] is True

        await make_bridge.stop(bridge)
        bridge = await start_bridge(make_bridge, ircd)
        third = "#" + uid("chan")
        await bob.join(third)
        await open_channel(alice, third, bob, timeout=60)
        assert await linked_space(bridge, third) == space
        rows = await bridge.db.fetch("SELECT mxid FROM space WHERE network='irc'")
        assert [r["mxid"] for r in rows] == [space]
        assert space_invites(alice) == {space}
