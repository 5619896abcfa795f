"""Fixtures of the Discord connector tests: a wire-level fake Discord
(tests/harness/discord_fake), the real discord.py pointed at it, the bridge, and the
session's real Synapse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.testing.matrix_client import MatrixTestClient
from bridges.discord.client import DiscordClient
from bridges.discord.connector import DiscordConnector
from bridges.discord.gateway import GatewayClient
from bridges.discord.login import DiscordLogin
from tests.conftest import SERVER_NAME, eventually
from tests.harness.discord_fake import MANAGE_MESSAGES, MANAGE_WEBHOOKS, FakeDiscord


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # aiohttp sessions may trust the environment's proxies: the fake is on loopback.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield


def ghost(user: Any) -> str:
    """The Matrix id of a Discord user's ghost."""
    return f"@_discord_{user.id}:{SERVER_NAME}"


@dataclass
class DiscordWorld:
    """One guild ``Acme`` (alice's) with the bridge's bot in it (a role allowing webhooks and
    managing messages), Discord users alice and bob, and the text channel ``#general``."""

    fake: FakeDiscord
    bot: Any
    guild: Any
    alice: Any
    bob: Any
    general: Any

    @property
    def bot_token(self) -> str:
        return self.bot.token

    def ghost(self, user: Any) -> str:
        return ghost(user)


@pytest.fixture(autouse=True)
def _quick_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake sends every GUILD_CREATE right after READY: no need to wait 2 s for more.
    monkeypatch.setattr(GatewayClient, "guild_ready_timeout", 0.1)


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def make_bridge(discord_fake: FakeDiscord, make_bridge: Any) -> Any:
    """The session's bridge factory, set up after the fake Discord so that at teardown the
    bridges stop before the fake does."""
    return make_bridge


@pytest.fixture
async def discord_world(discord_fake: FakeDiscord) -> DiscordWorld:
    fake = discord_fake
    bot = fake.add_bot("Bridge Bot")
    alice = fake.add_user("alice", global_name="Alice Liddell")
    bob = fake.add_user("bob", global_name="Bob Builder")
    guild = fake.add_guild("Acme", alice)
    fake.add_member(guild, bob)
    # a bot invited with the permissions its README asks for gets a role holding them
    role = fake.add_role(guild, "bridge", permissions=MANAGE_WEBHOOKS | MANAGE_MESSAGES)
    fake.add_member(guild, bot, roles=[role])
    general = fake.add_channel(guild, "general", topic="all things Acme")
    return DiscordWorld(fake, bot, guild, alice, bob, general)


def discord_networks(fake: FakeDiscord, **extra: Any) -> dict[str, Any]:
    """The fake network beside Discord: everything must hold with several connectors."""
    return {
        "fake": {"enabled": True},
        "discord": {
            "api_url": fake.api_url,
            "gateway_url": fake.gateway_url,
            "cdn_url": fake.cdn_url,
            "media_hosts": [fake.cdn_host],
            **extra,
        },
    }


@pytest.fixture
async def discord_bridge(make_bridge: Any, discord_fake: FakeDiscord) -> Bridge:
    return await make_bridge(
        networks=discord_networks(discord_fake), media={"allow": [discord_fake.cdn_host]}
    )


@pytest.fixture
async def dp_bridge(make_bridge: Any, discord_fake: FakeDiscord, bridge_env: Any) -> Bridge:
    """The Discord bridge with double puppeting for the homeserver's users (the test Synapse
    has the double-puppet appservice registration)."""
    return await make_bridge(
        networks=discord_networks(discord_fake),
        media={"allow": [discord_fake.cdn_host]},
        **{"double_puppet.secrets": {SERVER_NAME: f"as_token:{bridge_env.dp_token}"}},
    )


def connector(bridge: Bridge) -> DiscordConnector:
    conn = bridge.connectors["discord"]
    assert isinstance(conn, DiscordConnector)
    return conn


async def complete_login(bridge: Bridge, mxid: str, flow: str, token: str) -> Any:
    process = DiscordLogin(connector(bridge), mxid, flow)
    await process.start()
    step = await process.submit({"token": token})
    assert step.complete is not None
    return step.complete


async def login_bot(
    bridge: Bridge, user: MatrixTestClient, world: DiscordWorld, *, bridge_guild: bool = True
) -> DiscordClient:
    """``user`` logs in the bot (through the login flow's checks), its gateway session is
    ready, and (by default) the guild is bridged as ``discord bridge-guild`` does."""
    info = await complete_login(bridge, user.user_id, "bot", world.bot_token)
    await bridge.commands.get_or_create_user(user.user_id)
    client = await bridge.add_login(info)
    assert isinstance(client, DiscordClient)
    await eventually(lambda: client.connected, timeout=20)
    if bridge_guild:
        gateway = client.gateway
        assert gateway is not None
        await eventually(lambda: gateway.get_guild(int(world.guild.id)) is not None)
        guild = gateway.get_guild(int(world.guild.id))
        await connector(bridge).guilds.bridge(client, guild, user.user_id)
    return client


def body_is(text: str) -> Any:
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == text


async def open_channel(
    world: DiscordWorld, user: MatrixTestClient, channel: Any, speaker: Any
) -> str:
    """``speaker`` says something in ``channel``: its portal is made, ``user`` (the bot login's
    owner) is invited and joins. Returns the room id."""
    await world.fake.send_message(channel, speaker, "first words")
    # a new portal's room takes a few homeserver requests: slow when the machine is loaded
    room_id, _ = await user.wait_for_invite(timeout=45)
    await user.join(room_id)
    await user.wait_for_event(room_id, body_is("first words"))
    return room_id
