"""Guild nicknames and guild avatars: a ghost's name and avatar in its guild's rooms only
(its member event there), its global profile its account's. Fake Discord <-> bridge <-> real
Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.discord.media_helpers import png

pytestmark = pytest.mark.engine_independent


async def test_a_guild_nickname_is_the_ghost_name_in_the_guild_rooms_only(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    await fake.update_member(world.guild, world.bob, nick="Bobby of Acme")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        ghost = world.ghost(world.bob)

        async def room_name() -> str | None:
            state = await admin.get_state(room_id, "m.room.member", ghost)
            return state.get("displayname")

        assert await room_name() == "Bobby of Acme"
        profile = await admin.get_profile(ghost)
        assert profile["displayname"] == "Bob Builder"

        # The nickname changes: his next message shows the new one.
        await fake.update_member(world.guild, world.bob, nick="Captain Bob")
        await fake.send_message(world.general, world.bob, "renamed")
        await admin.wait_for_event(room_id, body_is("renamed"))
        await eventually(lambda: _is(room_name, "Captain Bob"))

        # The nickname is dropped: back to the account's name.
        await fake.update_member(world.guild, world.bob, nick=None)
        await fake.send_message(world.general, world.bob, "plain again")
        await admin.wait_for_event(room_id, body_is("plain again"))
        await eventually(lambda: _is(room_name, "Bob Builder"))


async def _is(getter, value) -> bool:
    return await getter() == value


async def test_a_guild_avatar_is_the_ghost_avatar_in_the_guild_rooms_only(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    await fake.update_member(world.guild, world.bob, avatar=fake.add_image(png(4, 4)))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        ghost = world.ghost(world.bob)
        state = await admin.get_state(room_id, "m.room.member", ghost)
        assert str(state.get("avatar_url", "")).startswith("mxc://")
        profile = await admin.get_profile(ghost)
        assert profile.get("avatar_url") != state["avatar_url"]  # bob has no account avatar
        assert state["displayname"] == "Bob Builder"
