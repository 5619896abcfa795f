"""Replies both ways, emotes and notices: fake Discord (real discord.py on the bridge's
side) <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.discord.test_e2e_edits import carol_in
from tests.harness.discord_fake import MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent


def reply(body: str, event_id: str, msgtype: str = "m.text") -> dict[str, Any]:
    return {
        "msgtype": msgtype,
        "body": body,
        "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
    }


async def test_a_discord_reply_replies_on_matrix(discord_bridge, discord_world, bridge_env, uid):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        asked = await fake.send_message(world.general, world.alice, "who is there?")
        question = await admin.wait_for_event(room_id, body_is("who is there?"))
        await fake.send_message(world.general, world.bob, "me", reply_to=asked["id"])
        answer = await admin.wait_for_event(room_id, body_is("me"))
        rel = answer["content"]["m.relates_to"]
        assert rel["m.in_reply_to"]["event_id"] == question["event_id"]
        assert world.ghost(world.alice) in answer["content"]["m.mentions"]["user_ids"]


async def test_a_reply_to_a_message_never_bridged_quotes_it(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    # said before the bridge was there: stored on Discord, never dispatched to it
    old = fake.new_message(world.general, world.alice.id, "ancient <b>words</b>\nsecond line")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await fake.send_message(world.general, world.bob, "still true", reply_to=old.id)
        answer = await admin.wait_for_event(
            room_id, lambda e: e.get("content", {}).get("body", "").endswith("still true")
        )
        content = answer["content"]
        assert content["body"] == "> Alice Liddell: ancient <b>words</b>\n\nstill true"
        html = content["formatted_body"]
        assert html.startswith("<blockquote>")
        assert world.ghost(world.alice) in html
        assert "ancient &lt;b&gt;words&lt;/b&gt;" in html and "<b>" not in html
        assert "m.in_reply_to" not in content.get("m.relates_to", {})


async def test_a_relayed_matrix_reply_quotes_through_the_webhook(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        asked = await fake.send_message(world.general, world.bob, "any **news** @everyone?")
        question = await admin.wait_for_event(room_id, body_is("any **news** @room?"))
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            await carol.send_message(room_id, reply("none yet", question["event_id"]))

            def answers() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if "none yet" in m["content"]]

            await eventually(lambda: bool(answers()))
            [msg] = answers()
            link = f"https://discord.com/channels/{world.guild.id}/{world.general.id}/{asked['id']}"
            assert msg["content"] == (
                f"> **Bob Builder**: any \\*\\*news\\*\\* @\u200beveryone? [↪]({link})\nnone yet"
            )
            assert msg["webhook_id"] and not msg["mention_everyone"]


async def test_a_matrix_reply_as_the_bot_is_a_discord_reply(
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
        asked = await fake.send_message(quiet, world.bob, "ping?")
        question = await admin.wait_for_event(room_id, body_is("ping?"))
        await admin.send_message(room_id, reply("pong", question["event_id"]))

        def answers() -> list[dict[str, Any]]:
            return [m for m in fake.messages(quiet) if m["content"] == "**Ada**: pong"]

        await eventually(lambda: bool(answers()))
        [msg] = answers()
        assert msg["message_reference"]["message_id"] == asked["id"]
        assert [u["id"] for u in msg["mentions"]] == [world.bob.id]  # the replied user


async def test_emotes_and_notices_reach_discord(discord_bridge, discord_world, bridge_env, uid):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await admin.send_message(room_id, {"msgtype": "m.emote", "body": "waves"})
        await admin.send_message(room_id, {"msgtype": "m.notice", "body": "a notice"})

        def contents() -> list[str]:
            return [m["content"] for m in fake.messages(world.general) if m.get("webhook_id")]

        await eventually(lambda: contents() == ["_waves_", "a notice"])
