"""A bot whose application has not enabled the Message Content intent: the bridge asks only
for the intents it may have (no 4014 loop), tells the admin at start-up and in ``ping``, and
never bridges the empty messages Discord then sends: their room is told why, once. Fake
Discord (real discord.py) <-> bridge <-> real Synapse."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from bridges.discord.emptied import NOTICE
from tests.conftest import eventually
from tests.discord.conftest import login_bot
from tests.harness.discord_fake.models import INTENT_GUILD_MEMBERS, INTENT_MESSAGE_CONTENT
from tests.helpers import management_room

pytestmark = pytest.mark.engine_independent


def body_has(text: str) -> Any:
    return lambda e: e.get("type") == "m.room.message" and text in e["content"].get("body", "")


async def test_without_message_content_the_admin_is_told_and_nothing_empty_is_bridged(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    world.bot.disabled_intents = INTENT_MESSAGE_CONTENT
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await management_room(admin, discord_bridge)
        client = await login_bot(discord_bridge, admin, world)
        notice = await conv.next_notice(timeout=20)
        assert "Message Content Intent" in notice and "Privileged Gateway Intents" in notice
        # Asked for what the application allows: members yes, message content no; no 4014.
        [session] = fake.sessions_of(world.bot)
        assert session.intents & INTENT_GUILD_MEMBERS
        assert not session.intents & INTENT_MESSAGE_CONTENT
        state = discord_bridge.login_states[client.login.id]
        assert state.state == BridgeStateEvent.CONNECTED
        pong = await conv.say("ping")
        assert "CONNECTED" in pong and "Message Content Intent" in pong

        # A message mentioning the bot keeps its content (Discord's rule): it opens the room.
        await fake.send_message(world.general, world.bob, f"{world.bot.mention} hello bot")
        room_id, _ = await admin.wait_for_invite()
        await admin.join(room_id)
        await admin.wait_for_event(room_id, body_has("hello bot"))
        for i in range(2):
            await fake.send_message(world.general, world.bob, f"plain words {i}")
        await admin.wait_for_event(room_id, body_has("without their content"), timeout=20)
        await fake.send_message(world.general, world.bob, f"{world.bot.mention} and again")
        await admin.wait_for_event(room_id, body_has("and again"), timeout=20)
        await asyncio.sleep(0.5)
        bodies = [
            e["content"].get("body", "")
            for e in await admin.messages(room_id)
            if e.get("type") == "m.room.message"
        ]
        assert bodies.count(NOTICE) == 1  # told once
        assert len(bodies) == 3  # hello, the notice, and again: no empty message
        assert all(b.strip() for b in bodies)


async def test_a_bot_with_every_intent_is_not_warned(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await management_room(admin, discord_bridge)
        client = await login_bot(discord_bridge, admin, world)
        [session] = world.fake.sessions_of(world.bot)
        assert session.intents & INTENT_MESSAGE_CONTENT
        await eventually(lambda: client.connected)
        pong = await conv.say("ping")
        assert "CONNECTED" in pong and "Intent" not in pong
