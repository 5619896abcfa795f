"""A Matrix room name or topic change that a network client takes: the runtime notes the value
the room shows (bridgekit/portal/matrix_to_remote.py), so the network's report of the same
change sets nothing a second time, and a value the connector queues back (the network refused
the change) restores the room. Real Synapse, the runtime, the in-memory fake network."""

from __future__ import annotations

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey, RemoteChatInfoChange
from tests.conftest import BridgeEnv, eventually
from tests.helpers import body_is, give_power, portal_scene

pytestmark = pytest.mark.engine_independent


async def names_and_topics(alice, room_id: str) -> tuple[list[str], list[str]]:
    events = await alice.messages(room_id)
    names = [e["content"].get("name") for e in events if e["type"] == "m.room.name"]
    topics = [e["content"].get("topic") for e in events if e["type"] == "m.room.topic"]
    return names, topics


async def test_the_networks_report_of_a_matrix_change_is_no_change(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid, name="General") as scene:
        alice, client, chat, room_id, net = scene
        await give_power(bridge, room_id, alice.user_id, 50)
        await alice.send_state(room_id, "m.room.name", "", {"name": "Renamed"})
        await alice.send_state(room_id, "m.room.topic", "", {"topic": "New topic"})
        await net.wait_for(lambda i: i.kind == "room_meta" and i.data.topic == "New topic")
        # The network reports both changes back: the room already shows them.
        await client.emit(RemoteChatInfoChange(PortalKey(chat), name="Renamed", topic="New topic"))
        await client.remote_message(chat, "bob", "after the report")
        await alice.wait_for_event(room_id, body_is("after the report"))
        names, topics = await names_and_topics(alice, room_id)
        assert names == ["General", "Renamed"] and topics.count("New topic") == 1

        # The network refuses a rename and the connector queues its own name back.
        await alice.send_state(room_id, "m.room.name", "", {"name": "Refused"})
        await net.wait_for(lambda i: i.kind == "room_meta" and i.data.name == "Refused")
        await client.emit(RemoteChatInfoChange(PortalKey(chat), name="Renamed"))

        async def restored() -> bool:
            return (await names_and_topics(alice, room_id))[0][-2:] == ["Refused", "Renamed"]

        await eventually(restored, timeout=30)
