"""Discord avatars of ghosts (and guild icons of spaces) come only from the allowed Discord
media hosts: real Synapse <-> bridge <-> fake Discord. An avatar URL elsewhere (a CDN base the
operator did not list in ``media_hosts``) is refused: no request reaches that host and the
ghost has no avatar."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.bridge import Bridge
from tests.conftest import eventually
from tests.discord.conftest import discord_networks, login_bot, open_channel
from tests.discord.media_helpers import (
    elsewhere,  # noqa: F401 - a fixture
    media_bytes,
    png,
)

pytestmark = pytest.mark.engine_independent


@pytest.fixture
async def foreign_cdn_bridge(make_bridge: Any, discord_fake: Any, elsewhere: Any) -> Bridge:  # noqa: F811
    """Avatars built on a CDN base that is not a Discord media host (the runtime itself would
    fetch from it: media.allow lists it)."""
    other = f"127.0.0.1:{elsewhere[0]}"
    return await make_bridge(
        networks=discord_networks(discord_fake, cdn_url=f"http://{other}"),
        media={"allow": [discord_fake.cdn_host, other]},
    )


async def test_a_ghost_gets_its_discord_avatar_from_the_cdn(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    face = png(12, 12)
    world.guild.icon = fake.add_image(png(5, 5))
    dave = fake.add_user("dave", global_name="Dave D", avatar=face)
    fake.add_member(world.guild, dave)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        await open_channel(world, admin, world.general, dave)
        profile: dict[str, Any] = {}

        async def has_avatar() -> bool:
            profile.update(await admin.get_profile(world.ghost(dave)))
            return bool(profile.get("avatar_url"))

        await eventually(has_avatar, timeout=30)
        base, token = bridge_env.synapse.base_url, admin.access_token
        assert await media_bytes(base, token, profile["avatar_url"]) == face
        assert any(p.startswith(f"/avatars/{dave.id}/") for p in fake.cdn_requests)
        # the guild's icon is its space's avatar
        await eventually(
            lambda: any(p.startswith(f"/icons/{world.guild.id}/") for p in fake.cdn_requests)
        )


async def test_an_avatar_off_the_allowed_hosts_is_not_fetched(
    foreign_cdn_bridge,
    discord_world,
    bridge_env,
    uid,
    elsewhere,  # noqa: F811
):
    world, fake = discord_world, discord_world.fake
    _, hits = elsewhere
    world.guild.icon = fake.add_image(png(5, 5))  # the space's avatar: not fetched either
    dave = fake.add_user("dave", global_name="Dave D", avatar=png(12, 12))
    fake.add_member(world.guild, dave)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(foreign_cdn_bridge, admin, world)
        await open_channel(world, admin, world.general, dave)
        profile = await admin.get_profile(world.ghost(dave))
        assert profile.get("displayname") == "Dave D"  # the profile was set: without a picture
        assert not profile.get("avatar_url")
        assert hits == [], "a request reached a host that is not a Discord media host"
