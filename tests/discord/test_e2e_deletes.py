"""Deletes both ways between a Discord channel and its portal room: fake Discord (real
discord.py on the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.discord.test_e2e_edits import carol_in, is_redaction_of
from tests.harness.discord_fake import MANAGE_MESSAGES, MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent


async def test_a_message_deleted_on_discord_is_redacted(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        sent = await fake.send_message(world.general, world.bob, "regrettable")
        event = await admin.wait_for_event(room_id, body_is("regrettable"))
        await fake.delete_message(world.general, sent["id"])
        await admin.wait_for_event(room_id, is_redaction_of(event["event_id"]))


async def test_a_bulk_delete_redacts_every_message(discord_bridge, discord_world, bridge_env, uid):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        ids, events = [], []
        for text in ("spam one", "spam two"):
            ids.append((await fake.send_message(world.general, world.alice, text))["id"])
            events.append((await admin.wait_for_event(room_id, body_is(text)))["event_id"])
        kept = await admin.wait_for_event(room_id, body_is("first words"))
        await fake.delete_messages(world.general, ids)
        for event_id in events:
            await admin.wait_for_event(room_id, is_redaction_of(event_id))
        assert not any(is_redaction_of(kept["event_id"])(e) for e in admin.history(room_id))


async def test_a_matrix_redaction_deletes_the_webhook_message(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            event_id = await carol.send_text(room_id, "oops")

            def contents() -> list[str]:
                return [m["content"] for m in fake.messages(world.general)]

            await eventually(lambda: "oops" in contents())
            await carol.redact(room_id, event_id)
            await eventually(lambda: "oops" not in contents())
            [gone] = [m for m in fake.deleted if m.content == "oops"]
            assert gone.webhook_id is not None
            delete = [r for r in fake.requests if r.method == "DELETE" and gone.id in r.path]
            assert delete and "/webhooks/" in delete[0].path


async def test_a_labelled_bot_message_is_deleted_as_the_bot(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    quiet = fake.add_channel(world.guild, "quiet")
    fake.set_overwrite(quiet, world.bot, deny=MANAGE_WEBHOOKS)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada")
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, quiet, world.bob)
        event_id = await admin.send_text(room_id, "take it back")
        await eventually(
            lambda: "**Ada**: take it back" in [m["content"] for m in fake.messages(quiet)]
        )
        await admin.redact(room_id, event_id)
        await eventually(
            lambda: "**Ada**: take it back" not in [m["content"] for m in fake.messages(quiet)]
        )


async def make_moderator(bridge, room_id: str, mxid: str) -> None:
    """The room's creator (the bridge bot) gives ``mxid`` the power to redact others."""
    bot = bridge.matrix.bot
    levels = await bot.get_power_levels(room_id, ignore_cache=True)
    levels.users[mxid] = 50
    await bot.set_power_levels(room_id, levels)


async def test_a_matrix_moderator_deletes_a_discord_message_through_the_bot(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await make_moderator(discord_bridge, room_id, admin.user_id)
        await fake.send_message(world.general, world.bob, "spam spam")
        event = await admin.wait_for_event(room_id, body_is("spam spam"))
        await admin.redact(room_id, event["event_id"], reason="spam")

        def contents() -> list[str]:
            return [m["content"] for m in fake.messages(world.general)]

        await eventually(lambda: "spam spam" not in contents())
        [delete] = [r for r in fake.requests if r.method == "DELETE" and "/messages/" in r.path]
        assert delete.token == f"Bot {world.bot_token}"


async def test_without_manage_messages_a_moderator_delete_is_refused(
    discord_bridge, discord_world, bridge_env, uid, caplog
):
    world, fake = discord_world, discord_world.fake
    strict = fake.add_channel(world.guild, "strict")
    fake.set_overwrite(strict, world.bot, deny=MANAGE_MESSAGES)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, strict, world.bob)
        await make_moderator(discord_bridge, room_id, admin.user_id)
        await fake.send_message(strict, world.bob, "stays")
        event = await admin.wait_for_event(room_id, body_is("stays"))
        await admin.redact(room_id, event["event_id"])
        await eventually(lambda: any("Manage Messages" in r.getMessage() for r in caplog.records))
        assert "stays" in [m["content"] for m in fake.messages(strict)]
