"""A token Discord refuses (a reset token: gateway close 4004, REST 401 at any time) turns the
login BAD_CREDENTIALS once, with one notice, and nothing IDENTIFYs with it again, also after
a restart; close 4014 (privileged intents) says which intents to enable and does not loop.
Fake Discord (real discord.py) <-> bridge <-> real Synapse. Persistence: both engines."""

from __future__ import annotations

import asyncio
from typing import Any

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.discord.conftest import discord_networks, login_bot, open_channel
from tests.harness.discord_fake.models import INTENT_MESSAGE_CONTENT
from tests.helpers import management_room


def config(fake: Any) -> dict[str, Any]:
    return {
        "networks": discord_networks(fake, reconnect={"base": 0.1, "max_delay": 0.5}),
        "media": {"allow": [fake.cdn_host]},
    }


def notices_with(conv: Any, text: str) -> list[str]:
    return [
        e["content"]["body"]
        for e in conv.client.history(conv.room_id)
        if e.get("sender") == conv.bot
        and e.get("type") == "m.room.message"
        and text in e["content"].get("body", "")
    ]


def authed(fake: Any, token: str) -> int:
    return sum(1 for r in fake.requests if r.token in (token, f"Bot {token}"))


async def assert_quiet(fake: Any, token: str, seconds: float = 6.0) -> None:
    """No IDENTIFY, socket nor REST call with the token for ``seconds`` (longer than
    discord.py's 5 s between IDENTIFYs)."""
    before = (fake.identify_count, len(fake.gateway_connects), authed(fake, token))
    await asyncio.sleep(seconds)
    assert (fake.identify_count, len(fake.gateway_connects), authed(fake, token)) == before


async def test_close_4004_is_bad_credentials_once_and_after_a_restart(
    make_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await management_room(admin, bridge)
        client = await login_bot(bridge, admin, world)
        login_id = client.login.id
        fake.refuse_token(world.bot_token)  # reset on Discord: live sessions closed 4004
        state = bridge.login_states[login_id]
        await eventually(lambda: state.state == BridgeStateEvent.BAD_CREDENTIALS, timeout=20)
        notice = await conv.next_notice(timeout=20)
        assert "BAD_CREDENTIALS" in notice and "4004" in notice
        assert "login discord bot" in notice
        assert world.bot_token not in notice
        await assert_quiet(fake, world.bot_token)
        assert not client.connected and client.dead
        assert len(notices_with(conv, "BAD_CREDENTIALS")) == 1

        await make_bridge.stop(bridge)
        identifies = fake.identify_count
        bridge = await make_bridge(**config(fake))
        await eventually(lambda: login_id in bridge.login_states, timeout=20)
        state = bridge.login_states[login_id]
        await eventually(lambda: state.state == BridgeStateEvent.BAD_CREDENTIALS, timeout=20)
        assert "4004" in state.message
        await assert_quiet(fake, world.bot_token, seconds=3.0)
        assert fake.identify_count == identifies
        assert len(notices_with(conv, "BAD_CREDENTIALS")) == 1  # not told again
        pong = await conv.say("ping")
        assert "BAD_CREDENTIALS" in pong and "login discord bot" in pong


async def test_a_rest_401_is_bad_credentials_and_ends_the_gateway(
    make_bridge, discord_world, bridge_env, uid
):
    """The token is refused on a REST call while the gateway session is still up (Discord
    would close it too; here it does not): the login stops itself."""
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        conv = await management_room(admin, bridge)
        client = await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        fake.refuse_token(world.bot_token, close=False)
        await carol.send_text(room_id, "needs a webhook")  # POST /channels/{id}/webhooks: 401
        state = bridge.login_states[client.login.id]
        await eventually(lambda: state.state == BridgeStateEvent.BAD_CREDENTIALS, timeout=20)
        notice = await conv.next_notice(timeout=20)
        assert "401" in notice and "login discord bot" in notice
        await eventually(lambda: not fake.sessions_of(world.bot)[-1].connected, timeout=20)
        await assert_quiet(fake, world.bot_token)
        assert len(notices_with(conv, "BAD_CREDENTIALS")) == 1


async def test_close_4014_names_the_intents_and_does_not_loop(
    make_bridge, discord_world, bridge_env, uid
):
    """The admin turned the Message Content intent off while the bridge ran: the next
    IDENTIFY (asking for it, as the flags read at start said) is closed with 4014."""
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await management_room(admin, bridge)
        client = await login_bot(bridge, admin, world)
        world.bot.disabled_intents = INTENT_MESSAGE_CONTENT
        await fake.invalidate_session(resumable=False)
        state = bridge.login_states[client.login.id]
        await eventually(lambda: state.state == BridgeStateEvent.UNKNOWN_ERROR, timeout=20)
        notice = await conv.next_notice(timeout=20)
        assert "4014" in notice
        assert "Message Content Intent" in notice and "Server Members Intent" in notice
        assert "Privileged Gateway Intents" in notice
        await assert_quiet(fake, world.bot_token)
