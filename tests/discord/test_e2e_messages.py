"""Messages both ways between a Discord channel and its portal room: fake Discord (real
discord.py on the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.harness.discord_fake import MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent


async def test_channel_message_reaches_matrix_from_the_ghost(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await world.fake.send_message(world.general, world.bob, "hello from discord")
        evt = await admin.wait_for_event(room_id, body_is("hello from discord"))
        assert evt["sender"] == world.ghost(world.bob)
        state = await admin.get_state(room_id, "m.room.name")
        assert state["name"] == "#general"


async def test_matrix_message_goes_through_the_webhook_and_is_not_echoed(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await carol.set_displayname("Carol C")  # before joining: the join carries it
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        await carol.send_text(room_id, "relayed words")
        fake = world.fake

        def sent() -> list:
            return [m for m in fake.messages(world.general) if m["content"] == "relayed words"]

        await eventually(lambda: bool(sent()))
        [msg] = sent()
        assert msg.get("webhook_id")
        assert msg["author"]["username"].startswith("Carol C")
        # The webhook's message comes back over the gateway: it must not be bridged again.
        await fake.send_message(world.general, world.bob, "after")
        await admin.wait_for_event(room_id, body_is("after"))
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        assert bodies.count("relayed words") == 1


async def test_the_bot_owner_is_relayed_under_their_own_name(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada Admin")
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await admin.send_text(room_id, "from the admin")
        fake = world.fake
        await eventually(
            lambda: any(m["content"] == "from the admin" for m in fake.messages(world.general))
        )
        [msg] = [m for m in fake.messages(world.general) if m["content"] == "from the admin"]
        assert msg.get("webhook_id"), "not sent as the bot account itself"
        assert msg["author"]["username"].startswith("Ada Admin")


async def test_a_guild_not_bridged_is_not_bridged(discord_bridge, discord_world, bridge_env, uid):
    world = discord_world
    fake = world.fake
    other = fake.add_guild("Elsewhere", world.alice)
    for user in (world.bot, world.alice):
        fake.add_member(other, user)
    lounge = fake.add_channel(other, "lounge")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(discord_bridge, admin, world)
        await eventually(lambda: client.gateway.get_guild(int(other.id)) is not None)
        await fake.send_message(lounge, world.alice, "not for matrix")
        await open_channel(world, admin, world.general, world.bob)
        for room in await admin.joined_rooms():
            bodies = [e["content"].get("body") for e in await admin.messages(room)]
            assert "not for matrix" not in bodies


async def test_where_webhooks_are_forbidden_the_bot_relays_with_a_label(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    quiet = fake.add_channel(world.guild, "quiet")
    fake.set_overwrite(quiet, world.bot, deny=MANAGE_WEBHOOKS)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada *Admin*")
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, quiet, world.bob)
        await admin.send_text(room_id, "no webhook here")

        def sent() -> list:
            return [m for m in fake.messages(quiet) if "no webhook here" in m["content"]]

        await eventually(lambda: bool(sent()))
        [msg] = sent()
        assert not msg.get("webhook_id")
        assert msg["author"]["id"] == world.bot.id
        assert msg["content"] == "**Ada \\*Admin\\***: no webhook here"


async def test_a_webhook_deleted_on_discord_is_made_again(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)

        def hooked(text: str) -> list:
            return [m for m in fake.messages(world.general) if m["content"] == text]

        await admin.send_text(room_id, "through the first webhook")
        await eventually(lambda: bool(hooked("through the first webhook")))
        first = hooked("through the first webhook")[0]["webhook_id"]
        fake.delete_webhook(first)
        await admin.send_text(room_id, "through a new one")
        await eventually(lambda: bool(hooked("through a new one")))
        second = hooked("through a new one")[0]["webhook_id"]
        assert second and second != first
        # Its messages are known as the bridge's own too: not bridged back.
        await fake.send_message(world.general, world.bob, "after the new webhook")
        await admin.wait_for_event(room_id, body_is("after the new webhook"))
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        assert bodies.count("through a new one") == 1
