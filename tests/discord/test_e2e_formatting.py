"""Formatting and mentions both ways, and long messages: fake Discord (real discord.py on
the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.discord.conftest import login_bot, open_channel
from tests.discord.test_e2e_edits import carol_in
from tests.helpers import give_power

pytestmark = pytest.mark.engine_independent


def body_has(text: str) -> Any:
    return lambda e: text in e.get("content", {}).get("body", "")


async def test_discord_markdown_and_mentions_become_html_and_pills(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        text = f"**bold** for <@{world.bob.id}> in <#{world.general.id}> ||hush||"
        await fake.send_message(world.general, world.alice, text)
        evt = await admin.wait_for_event(room_id, body_has("hush"))
        content = evt["content"]
        assert content["body"] == "**bold** for Bob Builder in #general ||hush||"
        html = content["formatted_body"]
        assert "<strong>bold</strong>" in html
        bob = world.ghost(world.bob)
        assert f'<a href="https://matrix.to/#/{bob}">Bob Builder</a>' in html
        assert "data-mx-spoiler" in html
        # the channel has a portal: a link to its room
        assert f'<a href="https://matrix.to/#/{room_id}">#general</a>' in html
        assert content["m.mentions"] == {"user_ids": [bob]}


async def test_everyone_on_discord_mentions_the_room(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await fake.send_message(world.general, world.alice, "@everyone lunch")
        evt = await admin.wait_for_event(room_id, body_has("lunch"))
        assert evt["content"]["body"] == "@room lunch"
        assert evt["content"]["m.mentions"]["room"] is True
        await fake.send_message(world.general, world.alice, "no one in particular")
        plain = await admin.wait_for_event(room_id, body_has("no one in particular"))
        assert "room" not in plain["content"]["m.mentions"]


async def test_html_from_discord_reaches_matrix_escaped(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        evil = (
            '**hi** <img src=x onerror="alert(1)"><script>steal()</script>'
            '<a href="javascript:x">y</a>'
        )
        await fake.send_message(world.general, world.alice, evil)
        evt = await admin.wait_for_event(room_id, body_has("steal()"))
        html = evt["content"]["formatted_body"]
        assert "<strong>hi</strong>" in html
        for tag in ("<img", "<script", '<a href="javascript'):
            assert tag not in html
        assert "&lt;script&gt;steal()&lt;/script&gt;" in html


async def test_matrix_html_and_pills_become_discord_markdown_and_mentions(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            bob = world.ghost(world.bob)
            await carol.send_message(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": "bold Bob Builder @room",
                    "format": "org.matrix.custom.html",
                    "formatted_body": f'<strong>bold</strong> <a href="https://matrix.to/#/{bob}">'
                    f'Bob Builder</a> <a href="https://matrix.to/#/{room_id}">#general</a> '
                    "@room @everyone",
                },
            )

            def sent() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if m.get("webhook_id")]

            await eventually(lambda: bool(sent()))
            [msg] = sent()
            assert msg["content"] == (
                f"**bold** <@{world.bob.id}> <#{world.general.id}> @room @\u200beveryone"
            )
            assert [u["id"] for u in msg["mentions"]] == [world.bob.id]
            # carol may not mention the room: no @everyone ping
            assert msg["mention_everyone"] is False


async def test_a_long_matrix_message_is_split_and_its_first_part_mapped(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            words = " ".join(f"word{n}" for n in range(500))  # ~3,400 characters
            event_id = await carol.send_text(room_id, words)

            def sent() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if m.get("webhook_id")]

            await eventually(
                lambda: " ".join(m["content"] for m in sent()).split() == words.split()
            )
            parts = sent()
            assert len(parts) == 2 and all(len(m["content"]) <= 2000 for m in parts)
            # a Discord reply to the first part is a Matrix reply to carol's message
            await fake.send_message(world.general, world.bob, "tl;dr", reply_to=parts[0]["id"])
            answer = await admin.wait_for_event(room_id, body_has("tl;dr"))
            assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
            # and a reply to a later part is one too (its id is mapped to the same event)
            await fake.send_message(world.general, world.bob, "tl;dr 2", reply_to=parts[1]["id"])
            answer = await admin.wait_for_event(room_id, body_has("tl;dr 2"))
            assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id


async def test_a_matrix_user_with_the_power_pings_everyone(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            await give_power(discord_bridge, room_id, carol.user_id, 50)  # notifications.room
            await carol.send_text(room_id, "@room meeting now")

            def sent() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if "meeting" in m["content"]]

            await eventually(lambda: bool(sent()))
            [msg] = sent()
            assert msg["content"] == "@everyone meeting now"
            assert msg["mention_everyone"] is True
