"""MUC history (XEP-0313, Prosody's mod_muc_mam) into portals: what a room said before its
portal existed arrives in the new Matrix room first, in order, with the times the room gave
it (backward); what it said while the bridge was stopped arrives once, in order, before what it
says live (forward: tests/xmpp/test_e2e_restart.py covers the ordering against live messages).
"""

from __future__ import annotations

import asyncio
import time

from tests.conftest import eventually
from tests.harness.prosody import Prosody
from tests.xmpp.conftest import alias, body_is, ghost, xmpp_networks


async def said(client, room_id: str, prefix: str) -> list[dict]:
    """The room's messages whose body starts with ``prefix``, in timeline order."""
    return [
        e
        for e in await client.messages(room_id)
        if e.get("type") == "m.room.message" and e["content"].get("body", "").startswith(prefix)
    ]


async def enough(events, n: int) -> bool:
    return len(await events) >= n


async def test_history_before_the_portal_existed(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bridge = await make_bridge(
        networks=xmpp_networks(prosody),
        **{"bridge.backfill": {"initial_limit": 5, "page_size": 2}},
    )
    assert await bridge.connectors["xmpp"].component.wait_online(15)
    bob = await xmpp_clients(prosody, uid("bob"))
    room = f"{uid('room')}@{prosody.muc}"
    await bob.join(room, "Bob")
    early = [f"h-{i}" for i in range(7)]
    started = time.time()
    for body in early:  # said before any portal: only in the room's archive
        bob.say(room, body)
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.5)  # the portal comes well after: its Matrix times must be older
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        created = time.time()
        room_id = await alice.join(alias(room))
        await eventually(lambda: enough(said(alice, room_id, "h-"), 5), timeout=40)
        bob.say(room, "h-live")
        await alice.wait_for_event(room_id, body_is("h-live"), timeout=20)
        await asyncio.sleep(1)
        events = await said(alice, room_id, "h-")
        # The newest five (initial_limit), oldest first, once each, and then the live one.
        assert [e["content"]["body"] for e in events] == [*early[2:], "h-live"]
        assert all(e["sender"] == ghost(f"{room}/Bob") for e in events)
        stamps = [e["origin_server_ts"] / 1000 for e in events[:5]]
        assert stamps == sorted(stamps)
        # The archive's times (to the second), not the time they were sent to Matrix.
        assert all(started - 1 <= ts <= created - 1 for ts in stamps), (started, stamps, created)


async def test_restart_catches_up_once_with_archive_times(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bridge = await make_bridge(networks=xmpp_networks(prosody))
    assert await bridge.connectors["xmpp"].component.wait_online(15)
    bob = await xmpp_clients(prosody, uid("bob"))
    room = f"{uid('room')}@{prosody.muc}"
    await bob.join(room, "Bob")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        room_id = await alice.join(alias(room))
        await bob.wait_for(
            lambda p: p["from"].bare == room and p["from"].resource not in ("Bob", ""),
            presences=True,
        )
        bob.say(room, "c-before")
        await alice.wait_for_event(room_id, body_is("c-before"))
        await make_bridge.stop(bridge)
        stopped = time.time()
        during = [f"c-during-{i}" for i in range(6)]
        for body in during:  # in the room's archive only
            bob.say(room, body)
        await asyncio.sleep(2.5)
        restarted = time.time()
        bridge = await make_bridge(
            networks=xmpp_networks(prosody), **{"bridge.backfill": {"page_size": 4}}
        )
        await eventually(lambda: enough(said(alice, room_id, "c-during"), 6), timeout=40)
        bob.say(room, "c-after")
        await alice.wait_for_event(room_id, body_is("c-after"), timeout=20)
        await asyncio.sleep(1)
        events = await said(alice, room_id, "c-")
        assert [e["content"]["body"] for e in events] == ["c-before", *during, "c-after"]
        stamps = [e["origin_server_ts"] / 1000 for e in events[1:-1]]
        assert all(stopped - 1 <= ts <= restarted - 1 for ts in stamps), (stopped, stamps)
