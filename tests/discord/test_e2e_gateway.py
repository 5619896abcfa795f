"""The gateway connection, nothing lost (issue 22): the connector's own backoff and circuit
breaker around discord.py's reconnects (mautrix/discord #240: close 4002 after every
GUILD_CREATE, 1,001 IDENTIFYs in 8.5 hours), RESUME replays, INVALID_SESSION, withheld
heartbeat ACKs, REST 429s and malformed dispatches; fake Discord (real discord.py) <->
bridge <-> real Synapse."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.discord.conftest import body_is, discord_networks, login_bot, open_channel

pytestmark = pytest.mark.engine_independent

#: A breaker on the tests' time scale: a 4 s pause after 3 short sessions.
QUICK = {"base": 0.1, "max_delay": 0.4, "failures": 3, "window": 60, "pause": 4, "stable": 30}


async def bridge_with(make_bridge: Any, fake: Any, **reconnect: Any) -> Any:
    networks = discord_networks(fake, reconnect=reconnect or QUICK)
    return await make_bridge(networks=networks, media={"allow": [fake.cdn_host]})


def said(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e.get("type") == "m.room.message"]


async def test_a_reconnect_storm_is_held_to_a_few_identifies_then_recovers(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        before = fake.identify_count
        # Every new session is closed with 4002 right after its GUILD_CREATEs, and the current
        # one cannot resume: discord.py IDENTIFYs again, and again.
        fake.storm(code=4002, after="GUILD_CREATE")
        await fake.invalidate_session(resumable=False)
        await eventually(lambda: state.error == "discord-reconnect-storm", timeout=30)
        assert state.state == BridgeStateEvent.TRANSIENT_DISCONNECT
        assert "3 gateway sessions" in state.message and "4002" in state.message
        tripped = fake.identify_count - before
        # 3 short sessions open the breaker: no more than those IDENTIFYs ...
        assert tripped <= 3
        # ... and none while it pauses (discord.py alone IDENTIFYs every ~5 s, forever).
        await asyncio.sleep(2.5)
        assert fake.identify_count - before == tripped
        fake.storm(None)
        # After the pause the login IDENTIFYs once more, is back, and messages flow.
        await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=30)
        assert fake.identify_count - before == tripped + 1
        await fake.send_message(world.general, world.bob, "after the storm")
        await admin.wait_for_event(room_id, body_is("after the storm"), timeout=30)


async def test_a_short_outage_is_retried_quickly_without_tripping(
    make_bridge, discord_world, bridge_env, uid
):
    """One lost session: discord.py reconnects after the breaker's first short wait, the
    login is CONNECTED again and nothing is reported as a storm."""
    world, fake = discord_world, discord_world.fake
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        before = fake.identify_count
        started = time.monotonic()
        await fake.invalidate_session(resumable=False)
        await eventually(lambda: fake.identify_count > before, timeout=20)
        assert time.monotonic() - started < 4.5  # not discord.py's fixed 5 s
        await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=20)
        assert state.error != "discord-reconnect-storm"
        await fake.send_message(world.general, world.bob, "back")
        await admin.wait_for_event(room_id, body_is("back"), timeout=30)


async def test_a_resume_after_op_7_doubles_nothing(make_bridge, discord_world, bridge_env, uid):
    """Op 7: discord.py RESUMEs and the gateway replays what was sent meanwhile; the login's
    catch-up (it was disconnected) finds the same messages: each reaches Matrix once."""
    world, fake = discord_world, discord_world.fake
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        resumes = fake.resume_count
        # Sent on the gateway while discord.py is between sockets: RESUME replays them.
        release = fake.hold("GET", "/channels/*/messages")  # the catch-up waits a little
        await fake.send_reconnect()
        for i in range(3):
            await fake.send_message(world.general, world.bob, f"around the resume {i}")
        await eventually(lambda: fake.resume_count > resumes, timeout=20)
        await asyncio.sleep(0.5)
        release.set()
        await fake.send_message(world.general, world.bob, "after the resume")
        await admin.wait_for_event(room_id, body_is("after the resume"), timeout=30)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "around the resume 0",
            "around the resume 1",
            "around the resume 2",
            "after the resume",
        ]
        assert fake.requests_to("GET", "/channels/*/messages"), "no catch-up after the resume"


async def test_invalid_session_identifies_again_and_catches_up(
    make_bridge, discord_world, bridge_env, uid
):
    """Op 9 (not resumable): a new IDENTIFY, and what was said while no session existed
    (it reached no gateway) comes through the catch-up, in order, before what follows."""
    world, fake = discord_world, discord_world.fake
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        state = bridge.login_states[client.login.id]
        identifies = fake.identify_count
        fake.gateway_paused = True  # what is said now reaches no session
        await fake.invalidate_session(resumable=False)
        await eventually(lambda: state.state != BridgeStateEvent.CONNECTED, timeout=20)
        for i in range(2):
            await fake.send_message(world.general, world.bob, f"while invalid {i}")
        fake.gateway_paused = False
        await eventually(lambda: fake.identify_count > identifies, timeout=20)
        await fake.send_message(world.general, world.bob, "identified again")
        await admin.wait_for_event(room_id, body_is("identified again"), timeout=30)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "while invalid 0",
            "while invalid 1",
            "identified again",
        ]


async def test_a_withheld_heartbeat_ack_reconnects_and_loses_nothing(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    fake.heartbeat_interval_ms = 300
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        # discord.py waits heartbeat_timeout (60 s) for an ACK before it calls the socket dead
        client.gateway._connection.heartbeat_timeout = 1.5
        client.gateway.ws._keep_alive.heartbeat_timeout = 1.5
        room_id = await open_channel(world, admin, world.general, world.bob)
        connects = len(fake.gateway_connects)
        fake.withhold_heartbeat_ack = True
        await fake.send_message(world.general, world.bob, "before the zombie")
        await eventually(lambda: len(fake.gateway_connects) > connects, timeout=30)
        fake.withhold_heartbeat_ack = False
        await fake.send_message(world.general, world.bob, "after the zombie")
        await admin.wait_for_event(room_id, body_is("after the zombie"), timeout=30)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "before the zombie",
            "after the zombie",
        ]


async def test_fifty_matrix_messages_through_a_429_arrive_all_in_order(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        await carol.send_text(room_id, "warm-up")  # the channel's webhook is made
        await eventually(
            lambda: any(m["content"] == "warm-up" for m in fake.messages(world.general))
        )
        # Webhook executions answer 429 (retry_after 1 s) twice, in the middle of the run.
        fake.rate_limit("POST", "/webhooks/*", retry_after=1.0, times=2)
        texts = [f"burst {i:02d}" for i in range(50)]
        for text in texts:
            await carol.send_text(room_id, text)

        def arrived() -> list[str]:
            return [m["content"] for m in fake.messages(world.general) if m["content"] in texts]

        await eventually(lambda: len(arrived()) == 50, timeout=120)
        assert arrived() == texts
        limited = [r for r in fake.requests_to("POST", "/webhooks/*") if r.status == 429]
        assert len(limited) == 2


async def test_malformed_dispatches_are_skipped_and_the_session_goes_on(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await bridge_with(make_bridge, fake)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        identifies, connects = fake.identify_count, len(fake.gateway_connects)
        channel = world.general.id
        for t, d in [
            ("MESSAGE_CREATE", {"id": "1", "channel_id": channel}),  # no author, no content
            ("MESSAGE_CREATE", {"id": "x", "channel_id": "not a snowflake", "author": None}),
            ("MESSAGE_CREATE", None),
            ("MESSAGE_UPDATE", {"channel_id": channel}),
            ("MESSAGE_DELETE", {"id": []}),
            ("CHANNEL_CREATE", {"id": "5", "type": "text"}),
            ("GUILD_MEMBER_UPDATE", {"guild_id": world.guild.id}),
            ("MESSAGE_REACTION_ADD", {"emoji": 3}),
            ("THREAD_CREATE", {"id": "7"}),
        ]:
            fake.send_raw_dispatch(t, d, user=world.bot)
        await fake.send_message(world.general, world.bob, "after the junk")
        await admin.wait_for_event(room_id, body_is("after the junk"), timeout=30)
        assert client.connected
        assert (fake.identify_count, len(fake.gateway_connects)) == (identifies, connects)
