"""Backfill through the fake connector and real Synapse (bridgekit/portal/backfill.py): history when
a portal is created (backward, in pages, threads included) and catch-up after an outage (forward,
in pages, before live messages that arrive meanwhile, with its cursor kept)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.connector import BACKWARD, FORWARD, BridgeStateEvent
from bridgekit.contract.events import EventSender, MessageContent, PortalKey, RemoteMessage
from tests.conftest import BridgeEnv, eventually
from tests.helpers import body_is, fake, ghost, login, open_portal


def said(chat: str, mid: str, sender: str, body: str, ts: float, **content) -> RemoteMessage:
    return RemoteMessage(
        PortalKey(chat),
        EventSender(sender),
        timestamp=ts,
        id=mid,
        content=MessageContent(body, **content),
    )


def from_ghosts(events: list[dict]) -> list[dict]:
    return [
        e for e in events if e.get("type") == "m.room.message" and e["sender"].startswith("@_fake_")
    ]


async def test_history_on_portal_creation_in_pages(make_bridge, bridge_env: BridgeEnv, uid):
    bridge: Bridge = await make_bridge(
        **{"bridge.backfill": {"initial_limit": 6, "page_size": 4, "catchup": False}}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob", "carol"])
        base = time.time() - 86400
        ids = [uid("m") for _ in range(8)]
        net.history[chat] = [
            said(chat, ids[i], "bob" if i % 2 else "carol", f"old {i}", base + i) for i in range(8)
        ]
        net.history[chat][6].content.thread_root = ids[4]  # a reply in the thread of "old 4"
        room_id = await open_portal(bridge, alice, client, chat)
        events = from_ghosts(await alice.messages(room_id))
        # The newest six, oldest first, before the message that made the room; each once.
        assert [e["content"]["body"] for e in events] == [
            *(f"old {i}" for i in range(2, 8)),
            "hello from the remote side",
        ]
        for i, e in zip(range(2, 8), events, strict=False):
            assert e["origin_server_ts"] == int((base + i) * 1000)  # the network's time
            assert e["sender"] == ghost("bob" if i % 2 else "carol")
        root, in_thread = events[2], events[4]
        assert in_thread["content"]["m.relates_to"]["rel_type"] == "m.thread"
        assert in_thread["content"]["m.relates_to"]["event_id"] == root["event_id"]
        # Two pages, the second going on from the first one's cursor.
        assert net.fetches == [
            (chat, None, BACKWARD, 4, None),
            (chat, ids[4], BACKWARD, 2, "4"),
        ]
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None
        state = await bridge.backfill.state(portal)
        assert state is not None and state.initial_done
        assert (state.backward_cursor, state.backward_more) == ("2", True)


async def test_no_history_when_initial_limit_is_zero(make_bridge, bridge_env: BridgeEnv, uid):
    bridge: Bridge = await make_bridge(**{"bridge.backfill": {"initial_limit": 0}})
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        net.history[chat] = [said(chat, uid("m"), "bob", "old", time.time() - 60)]
        room_id = await open_portal(bridge, alice, client, chat)
        bodies = [e["content"]["body"] for e in from_ghosts(await alice.messages(room_id))]
        assert bodies == ["hello from the remote side"]
        assert net.fetches == []


async def test_catch_up_in_pages_before_live_messages(make_bridge, bridge_env: BridgeEnv, uid):
    bridge: Bridge = await make_bridge(
        **{"bridge.backfill": {"initial_limit": 0, "catchup_limit": 10, "page_size": 3}}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        key = PortalKey(chat)
        last = await bridge.store.last_remote_message("fake", key)
        assert last is not None
        bridge.report_state(client.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, "down")
        base = time.time() - 3600
        ids = [uid("m") for _ in range(7)]
        net.history[chat] = [
            said(chat, last, "bob", "hello from the remote side", base - 1),
            *(said(chat, ids[i], "bob", f"missed {i}", base + i) for i in range(7)),
        ]
        # A slow network: the catch-up's first fetch waits while a live message arrives.
        net.fetch_gate = asyncio.Event()
        bridge.report_state(client.login.id, BridgeStateEvent.CONNECTED)
        await eventually(lambda: len(net.fetches) == 1)
        live = await client.remote_message(chat, "bob", "said live during the catch-up")
        net.history[chat].append(said(chat, live, "bob", "said live during the catch-up", 0))
        await asyncio.sleep(0.3)
        net.fetch_gate.set()
        await alice.wait_for_event(room_id, body_is("said live during the catch-up"), timeout=30)
        events = from_ghosts(await alice.messages(room_id))
        assert [e["content"]["body"] for e in events] == [
            "hello from the remote side",
            *(f"missed {i}" for i in range(7)),
            "said live during the catch-up",
        ]
        assert [e["origin_server_ts"] for e in events[1:8]] == [
            int((base + i) * 1000) for i in range(7)
        ]
        # Three pages of three, each going on from the cursor of the one before.
        assert net.fetches == [
            (chat, last, FORWARD, 3, None),
            (chat, ids[2], FORWARD, 3, "4"),
            (chat, ids[5], FORWARD, 3, "7"),
        ]
        # Reconnecting again fetches from the newest message bridged: nothing is repeated.
        net.fetches.clear()
        bridge.report_state(client.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, "down")
        bridge.report_state(client.login.id, BridgeStateEvent.CONNECTED)
        await eventually(lambda: len(net.fetches) == 1)
        assert net.fetches[0][:3] == (chat, live, FORWARD)
        portal = await bridge.store.get_portal("fake", key)
        assert portal is not None

        async def kept() -> bool:
            state = await bridge.backfill.state(portal)
            return state is not None and state.forward_cursor == "9"

        await eventually(kept)
        # ...and the next one goes on from where that one ended, the cursor kept in the database.
        net.fetches.clear()
        bridge.report_state(client.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, "down")
        bridge.report_state(client.login.id, BridgeStateEvent.CONNECTED)
        await eventually(lambda: len(net.fetches) == 1)
        assert net.fetches[0] == (chat, live, FORWARD, 3, "9")
        await asyncio.sleep(0.5)
        assert len(from_ghosts(await alice.messages(room_id))) == len(events)


async def test_remote_timestamps_out_of_range_use_server_time(
    make_bridge, bridge_env: BridgeEnv, uid
):
    """A network's timestamp is untrusted: one before 1970 (Synapse refuses a negative ``ts``
    with 400, which lost the message), one centuries ahead (it would date the event, and sort
    the room, in the year 2500) or not a number at all is replaced by the homeserver's time."""
    bridge: Bridge = await make_bridge(
        **{"bridge.backfill": {"initial_limit": 10, "page_size": 10, "catchup": False}}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        bogus = [-86400.0 * 365, 16725225600.0, float("nan"), float("inf")]  # 1969, 2500
        net.history[chat] = [
            said(chat, uid("m"), "bob", f"odd {i}", ts) for i, ts in enumerate(bogus)
        ]
        before = time.time()
        room_id = await open_portal(bridge, alice, client, chat)
        events = from_ghosts(await alice.messages(room_id))
        assert [e["content"]["body"] for e in events] == [
            *(f"odd {i}" for i in range(len(bogus))),
            "hello from the remote side",
        ]
        for e in events:
            assert before - 60 <= e["origin_server_ts"] / 1000 <= time.time() + 60


@pytest.mark.parametrize("catchup", [True, False])
async def test_a_login_hears_once_its_catch_ups_are_queued(
    make_bridge, bridge_env: BridgeEnv, uid, catchup: bool
):
    """``BackfillHandler.catch_up_queued`` comes after the login's catch-up requests are in
    their portals' queues (a connector holding live events until then lets them go behind
    them), and also when catch-up is off."""
    bridge: Bridge = await make_bridge(
        **{"bridge.backfill": {"initial_limit": 0, "catchup": catchup}}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        await open_portal(bridge, alice, client, chat)
        seen: list[str] = []
        queue = bridge.backfill.queue_remote_event

        async def recording_queue(login_id, evt) -> None:
            await queue(login_id, evt)
            seen.append(f"queued {type(evt).__name__}")

        async def hook() -> None:
            seen.append("catch_up_queued")

        bridge.backfill.queue_remote_event = recording_queue  # type: ignore[method-assign]
        client.catch_up_queued = hook  # type: ignore[method-assign]
        bridge.report_state(client.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, "down")
        bridge.report_state(client.login.id, BridgeStateEvent.CONNECTED)
        await eventually(lambda: "catch_up_queued" in seen)
        expected = ["queued RemoteBackfill"] if catchup else []
        assert seen == [*expected, "catch_up_queued"]
