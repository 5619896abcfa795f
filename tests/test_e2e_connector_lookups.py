"""The connector API's message lookups answer only for the portal (and network) asked about:
event ids are global, so an id a remote user quotes may name another room's event."""

from __future__ import annotations

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from bridgekit.database.records import MessageRow
from bridgekit.network_api import NetworkBridge


def row(portal: PortalKey, remote_id: str, event_id: str) -> MessageRow:
    return MessageRow(
        network="fake",
        portal=portal,
        remote_id=remote_id,
        part="",
        event_id=event_id,
        room_id=f"!{portal.id}:example.org",
        sender_mxid="@_fake_bob:example.org",
        sender_remote="bob",
        ts=1000,
        thread_root=None,
    )


async def test_lookups_by_event_or_remote_id_stay_in_their_portal(bridge: Bridge, uid) -> None:
    a, b = PortalKey(uid("chat-a")), PortalKey(uid("chat-b"))
    in_a, in_b = uid("$in-a"), uid("$in-b")
    await bridge.store.add_message(row(a, "ra", in_a))
    await bridge.store.add_message(row(b, "rb", in_b))
    fake_api, other_api = (
        NetworkBridge(bridge.network_services, "fake"),
        NetworkBridge(bridge.network_services, "other"),
    )
    assert await fake_api.find_remote_id(a, in_a) == "ra"
    assert await fake_api.find_remote_id(a, in_b) is None  # B's event, asked from A
    assert await other_api.find_remote_id(b, in_b) is None  # another network's portal
    assert await fake_api.find_message(b, "rb") == in_b
    assert await fake_api.find_message(a, "rb") is None
    assert await other_api.find_message(b, "rb") is None


async def test_has_room_answers_for_the_portals_with_a_room_only(bridge: Bridge, uid) -> None:
    with_room, without = PortalKey(uid("chat-room")), PortalKey(uid("chat-none"))
    portal = bridge.store.new_portal("fake", with_room)
    portal.mxid = f"!{with_room.id}:example.org"
    await portal.save()
    await bridge.store.new_portal("fake", without).save()  # a row, no room yet
    fake_api, other_api = (
        NetworkBridge(bridge.network_services, "fake"),
        NetworkBridge(bridge.network_services, "other"),
    )
    assert await fake_api.has_room(with_room)
    assert not await fake_api.has_room(without)
    assert not await fake_api.has_room(PortalKey(uid("never-seen")))
    assert not await other_api.has_room(with_room)  # another network's portal
