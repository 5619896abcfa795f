"""Catch-up after every reconnect and after a restart (matrix-appservice-discord #398, #845:
messages sent while the bridge was disconnected never arrived): what was said meanwhile
reaches Matrix once, in order, before what is said next; fake Discord (real discord.py) <->
bridge <-> real Synapse. Persistence (the newest bridged message after a restart): both
engines."""

from __future__ import annotations

import asyncio
from typing import Any

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.discord.conftest import body_is, discord_networks, login_bot, open_channel


def config(fake: Any, **backfill: Any) -> dict[str, Any]:
    return {
        "networks": discord_networks(fake, reconnect={"base": 0.1, "max_delay": 0.5}),
        "media": {"allow": [fake.cdn_host]},
        "bridge.backfill": {"initial_limit": 0, **backfill},
    }


def said(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e.get("type") == "m.room.message"]


def history_reads(fake: Any, channel: Any) -> list[Any]:
    return [r for r in fake.requests_to("GET", f"/channels/{channel.id}/messages") if r.query]


async def test_messages_said_during_a_gateway_outage_arrive_once_in_order(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake, page_size=2))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        first = fake.messages(world.general)[-1]
        async with fake.gateway_outage():
            await eventually(lambda: state.state != BridgeStateEvent.CONNECTED, timeout=20)
            for i in range(5):  # reach no gateway: only GET /channels/{id}/messages has them
                await fake.send_message(world.general, world.bob, f"missed {i}")
        await admin.wait_for_event(room_id, body_is("missed 4"), timeout=60)
        await fake.send_message(world.general, world.alice, "live again")
        await admin.wait_for_event(room_id, body_is("live again"), timeout=30)
        events = await admin.messages(room_id)
        assert said(events) == ["first words", *(f"missed {i}" for i in range(5)), "live again"]
        assert {e["sender"] for e in events if body_is("missed 0")(e)} == {world.ghost(world.bob)}
        # Read after the newest bridged message, in pages of the runtime's size (2).
        reads = history_reads(fake, world.general)
        assert reads[0].query["after"] == first["id"]
        assert len(reads) >= 3


async def test_messages_said_while_the_bridge_was_stopped_arrive_after_the_restart(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await fake.send_message(world.general, world.bob, "before the stop")
        await admin.wait_for_event(room_id, body_is("before the stop"))
        anchor = fake.messages(world.general)[-1]["id"]
        await make_bridge.stop(bridge)
        for i in range(3):
            await fake.send_message(world.general, world.bob, f"while stopped {i}")
        bridge = await make_bridge(**config(fake))
        await admin.wait_for_event(room_id, body_is("while stopped 2"), timeout=60)
        await fake.send_message(world.general, world.bob, "after the restart")
        await admin.wait_for_event(room_id, body_is("after the restart"), timeout=30)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "before the stop",
            "while stopped 0",
            "while stopped 1",
            "while stopped 2",
            "after the restart",
        ]
        # The anchor came from the runtime's message table (nothing else survived the stop).
        assert history_reads(fake, world.general)[-1].query["after"] == anchor


async def test_a_live_message_at_reconnect_neither_overtakes_nor_doubles_the_catch_up(
    make_bridge, discord_world, bridge_env, uid, monkeypatch
):
    """What the gateway delivers as soon as the login is back (between READY and the
    login's CONNECTED, which queues the catch-ups) waits behind the catch-up (else it lands
    before what was missed, and the catch-up starts after it and loses what was missed),
    and the catch-up that also returns it does not double it."""
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        async with fake.gateway_outage():
            await eventually(lambda: state.state != BridgeStateEvent.CONNECTED, timeout=20)
            for i in range(3):
                await fake.send_message(world.general, world.bob, f"missed {i}")
            release = fake.hold("GET", f"/channels/{world.general.id}/messages")  # slow
            # discord.py reports ready (-> CONNECTED -> catch-up) 2 s after READY
            monkeypatch.setattr(client.gateway._connection, "guild_ready_timeout", 2.0)
            sessions = len(fake.sessions)
        await eventually(lambda: len(fake.connected_sessions) and len(fake.sessions) > sessions)
        await fake.send_message(world.general, world.alice, "at the door")
        await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=30)
        await fake.send_message(world.general, world.alice, "said during the catch-up")
        await asyncio.sleep(1.0)
        release.set()
        await admin.wait_for_event(room_id, body_is("said during the catch-up"), timeout=60)
        await fake.send_message(world.general, world.bob, "afterwards")
        await admin.wait_for_event(room_id, body_is("afterwards"), timeout=30)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "missed 0",
            "missed 1",
            "missed 2",
            "at the door",
            "said during the catch-up",
            "afterwards",
        ]


async def test_every_reconnect_catches_up_not_only_the_first(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        for round_ in range(2):
            async with fake.gateway_outage():
                await eventually(lambda: state.state != BridgeStateEvent.CONNECTED, timeout=20)
                await fake.send_message(world.general, world.bob, f"gap {round_}")
            await admin.wait_for_event(room_id, body_is(f"gap {round_}"), timeout=60)
            await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=30)
        assert said(await admin.messages(room_id)) == ["first words", "gap 0", "gap 1"]


def relation(event: dict[str, Any]) -> tuple[str | None, str | None]:
    rel = event["content"].get("m.relates_to") or {}
    return rel.get("rel_type"), rel.get("event_id")


async def test_thread_messages_said_during_an_outage_join_their_threads(
    make_bridge, discord_world, bridge_env, uid
):
    """A thread's messages are not in its channel's history: the catch-up reads the guild's
    active threads too (one opened during the outage as well), and merges them in order."""
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        root = await fake.send_message(world.general, world.bob, "root")
        root_event = await admin.wait_for_event(room_id, body_is("root"))
        thread = await fake.create_thread(world.general, root["id"], "topic", world.bob)
        async with fake.gateway_outage():
            await eventually(lambda: state.state != BridgeStateEvent.CONNECTED, timeout=20)
            await fake.send_message(thread, world.alice, "in the thread")
            await fake.send_message(world.general, world.bob, "in the channel")
            root2 = await fake.send_message(world.general, world.alice, "root 2")
            thread2 = await fake.create_thread(world.general, root2["id"], "new", world.alice)
            await fake.send_message(thread2, world.bob, "in the new thread")
        await admin.wait_for_event(room_id, body_is("in the new thread"), timeout=60)
        await fake.send_message(world.general, world.bob, "live again")
        await admin.wait_for_event(room_id, body_is("live again"), timeout=30)
        events = [e for e in await admin.messages(room_id) if e.get("type") == "m.room.message"]
        assert said(events) == [
            "first words",
            "root",
            "in the thread",
            "in the channel",
            "root 2",
            "in the new thread",
            "live again",
        ]
        by_body = {e["content"]["body"]: e for e in events}
        assert relation(by_body["in the thread"]) == ("m.thread", root_event["event_id"])
        assert relation(by_body["in the new thread"]) == (
            "m.thread",
            by_body["root 2"]["event_id"],
        )
        assert relation(by_body["in the channel"]) == (None, None)
