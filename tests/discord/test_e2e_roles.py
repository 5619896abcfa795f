"""Guild roles -> power levels in the guild's rooms (at the room's creation, then as members'
roles and roles' permissions change), and members' account profiles -> their ghosts. Fake
Discord <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.harness.discord_fake import ADMINISTRATOR, MANAGE_MESSAGES

pytestmark = pytest.mark.engine_independent

KICK_MEMBERS = 1 << 1


async def levels(client, room_id: str) -> dict[str, int]:
    return (await client.get_state(room_id, "m.room.power_levels")).get("users", {})


async def test_admins_and_moderators_get_power_in_a_new_room(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admins = fake.add_role(world.guild, "admins", permissions=ADMINISTRATOR)
    mods = fake.add_role(world.guild, "mods", permissions=KICK_MEMBERS)
    carol = fake.add_user("carol", global_name="Carol")
    dave = fake.add_user("dave", global_name="Dave")
    fake.add_member(world.guild, carol, roles=[mods])
    fake.add_member(world.guild, dave, roles=[admins])
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)

        async def settled() -> bool:
            users = await levels(admin, room_id)
            return world.ghost(dave) in users and world.ghost(carol) in users

        await eventually(settled, timeout=30)
        users = await levels(admin, room_id)
        assert users[world.ghost(carol)] == 50
        assert users[world.ghost(dave)] >= 90  # an admin (capped below the bridge bot)
        assert users[world.ghost(world.alice)] >= 90  # the guild's owner
        assert world.ghost(world.bob) not in users  # no role with power
        # the bridge's own bot (its role may manage messages) is no ghost
        assert world.ghost(world.bot) not in users


async def test_role_changes_move_power_levels(discord_bridge, discord_world, bridge_env, uid):
    world = discord_world
    fake = world.fake
    mods = fake.add_role(world.guild, "mods", permissions=MANAGE_MESSAGES)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await eventually(
            lambda: _level_is(admin, room_id, world.ghost(world.alice), 90, ">="), timeout=30
        )
        assert world.ghost(world.bob) not in await levels(admin, room_id)
        # bob is given the mods role (GUILD_MEMBER_UPDATE)
        await fake.update_member(world.guild, world.bob, roles=[mods])
        await eventually(lambda: _level_is(admin, room_id, world.ghost(world.bob), 50), timeout=30)
        # the role loses its power (GUILD_ROLE_UPDATE)
        await fake.update_role(world.guild, mods, permissions=0)
        await eventually(lambda: _level_is(admin, room_id, world.ghost(world.bob), 0), timeout=30)
        # and gets administrator
        await fake.update_role(world.guild, mods, permissions=ADMINISTRATOR)
        await eventually(
            lambda: _level_is(admin, room_id, world.ghost(world.bob), 90, ">="), timeout=30
        )
        # the role is deleted (GUILD_ROLE_DELETE)
        await fake.delete_role(world.guild, mods)
        await eventually(lambda: _level_is(admin, room_id, world.ghost(world.bob), 0), timeout=30)
        # bob still speaks as before
        await fake.send_message(world.general, world.bob, "still here")
        await admin.wait_for_event(room_id, body_is("still here"))


async def _level_is(client, room_id: str, mxid: str, want: int, op: str = "==") -> bool:
    got = (await levels(client, room_id)).get(mxid, 0)
    return got >= want if op == ">=" else got == want


async def test_a_ghost_is_named_by_its_account_and_follows_its_profile(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    fake.add_image("bobface", b"\x89PNG\r\n\x1a\n" + b"\x01" * 64)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await fake.update_member(world.guild, world.bob, nick="Bobby (Acme)")
        await login_bot(discord_bridge, admin, world)
        await open_channel(world, admin, world.general, world.bob)
        ghost = world.ghost(world.bob)
        # one name in every room: the account's, not the guild nickname
        assert (await admin.get_profile(ghost)).get("displayname") == "Bob Builder"
        await fake.update_user(world.bob, global_name="Robert Builder")

        async def renamed() -> bool:
            return (await admin.get_profile(ghost)).get("displayname") == "Robert Builder"

        await eventually(renamed, timeout=30)
        await fake.update_user(world.bob, avatar="bobface")

        async def has_avatar() -> bool:
            return str((await admin.get_profile(ghost)).get("avatar_url", "")).startswith("mxc://")

        await eventually(has_avatar, timeout=30)
        # a nickname change leaves the ghost's name as it is
        await fake.update_member(world.guild, world.bob, nick="Bob the Builder")
        await fake.send_message(world.general, world.bob, "nick changed")
        room_id = (await admin.joined_rooms())[0]
        await admin.wait_for_event(room_id, body_is("nick changed"))
        assert (await admin.get_profile(ghost)).get("displayname") == "Robert Builder"


async def test_a_member_list_refused_leaves_a_room_without_levels_and_is_asked_again(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    mods = fake.add_role(world.guild, "mods", permissions=MANAGE_MESSAGES)
    fake.add_member(world.guild, fake.add_user("carol", global_name="Carol"), roles=[mods])
    carol = fake.user_by_name("carol")
    other = fake.add_channel(world.guild, "other")
    fake.fail("GET", f"/guilds/{world.guild.id}/members", 403, code=50001, message="Missing Access")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        assert world.ghost(carol) not in await levels(admin, room_id)
        other_room = await open_channel(world, admin, other, world.bob)
        await eventually(lambda: _level_is(admin, other_room, world.ghost(carol), 50), timeout=30)
