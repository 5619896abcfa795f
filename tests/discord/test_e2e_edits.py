"""Edits both ways between a Discord channel and its portal room: fake Discord (real
discord.py on the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.harness.discord_fake import MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent


def replaces(event_id: str, body: str | None = None) -> Any:
    def match(e: dict[str, Any]) -> bool:
        content = e.get("content", {})
        rel = content.get("m.relates_to") or {}
        return (
            e.get("type") == "m.room.message"
            and rel.get("rel_type") == "m.replace"
            and rel.get("event_id") == event_id
            and (body is None or content.get("m.new_content", {}).get("body") == body)
        )

    return match


def edits_in(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if (e.get("content", {}).get("m.relates_to") or {}).get("rel_type") == "m.replace"
    ]


def is_redaction_of(event_id: str) -> Any:
    return lambda e: (
        e.get("type") == "m.room.redaction"
        and (e.get("redacts") == event_id or e.get("content", {}).get("redacts") == event_id)
    )


def matrix_edit(event_id: str, body: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": f"* {body}",
        "m.new_content": {"msgtype": "m.text", "body": body},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }


async def carol_in(bridge_env, uid, admin, room_id: str, name: str = "Carol C"):
    carol = await bridge_env.synapse.register_user(uid("carol"))
    await carol.set_displayname(name)
    await admin.invite(room_id, carol.user_id)
    await carol.join(room_id)
    return carol


async def test_discord_edits_replace_the_original_event_each_time(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        sent = await fake.send_message(world.general, world.bob, "version one")
        original = await admin.wait_for_event(room_id, body_is("version one"))
        await fake.edit_message(world.general, sent["id"], "version **two**")
        first = await admin.wait_for_event(
            room_id, replaces(original["event_id"], "version **two**")
        )
        assert first["sender"] == world.ghost(world.bob)
        assert "<strong>two</strong>" in first["content"]["m.new_content"]["formatted_body"]
        await fake.edit_message(world.general, sent["id"], "version three")
        # the second edit replaces the original too, never the first edit
        await admin.wait_for_event(room_id, replaces(original["event_id"], "version three"))
        assert not any(replaces(first["event_id"])(e) for e in admin.history(room_id))


async def test_an_unfurl_or_an_unchanged_text_is_no_edit(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        link = await fake.send_message(world.general, world.bob, "see https://example.org")
        await admin.wait_for_event(room_id, body_is("see https://example.org"))
        # Discord's unfurler adds an embed: a MESSAGE_UPDATE nobody's edit made
        await fake.unfurl(
            world.general, link["id"], [{"type": "link", "url": "https://example.org"}]
        )
        edited = await fake.send_message(world.general, world.bob, "typo hree")
        await admin.wait_for_event(room_id, body_is("typo hree"))
        await fake.edit_message(world.general, edited["id"], "typo here")
        await admin.wait_for_event(room_id, lambda e: replaces_body(e, "typo here"))
        # the edited message unfurls too: same text, same edited_timestamp
        await fake.unfurl(world.general, edited["id"], [{"type": "rich", "title": "x"}])
        await fake.send_message(world.general, world.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        assert len(edits_in(admin.history(room_id))) == 1


def replaces_body(e: dict[str, Any], body: str) -> bool:
    return (e.get("content", {}).get("m.new_content") or {}).get("body") == body


async def test_an_edit_that_empties_a_message_with_a_file_does_not_blank_it(
    discord_bridge, discord_world, bridge_env, uid
):
    """matrix-appservice-discord #791, #688: removing the text of a message that has an
    attachment blanked (or deleted) the Matrix message."""
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        sent = await fake.send_message(
            world.general,
            world.bob,
            "look at this",
            attachments=[("cat.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "image/png")],
        )
        original = await admin.wait_for_event(room_id, body_is("look at this"))
        await fake.edit_message(world.general, sent["id"], "")
        await fake.send_message(world.general, world.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        history = admin.history(room_id)
        assert not any(replaces(original["event_id"])(e) for e in history)
        assert not any(is_redaction_of(original["event_id"])(e) for e in history)
        events = await admin.messages(room_id)
        [still] = [e for e in events if e["event_id"] == original["event_id"]]
        assert still["content"].get("body") == "look at this"


async def test_matrix_edits_change_the_webhook_message_and_do_not_come_back(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            event_id = await carol.send_text(room_id, "first draft")

            def hooked() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if m.get("webhook_id")]

            await eventually(lambda: [m["content"] for m in hooked()] == ["first draft"])
            await carol.send_message(room_id, matrix_edit(event_id, "second draft"))
            await eventually(lambda: [m["content"] for m in hooked()] == ["second draft"])
            # an edit of the edited message names the original: it changes the same message
            await carol.send_message(room_id, matrix_edit(event_id, "third *draft*"))
            await eventually(lambda: [m["content"] for m in hooked()] == ["third \\*draft\\*"])
            [msg] = hooked()
            assert msg["edited_timestamp"]
            await fake.send_message(world.general, world.bob, "marker")
            await admin.wait_for_event(room_id, body_is("marker"))
            # the updates coming back over the gateway are not bridged again
            assert {e["sender"] for e in edits_in(await admin.messages(room_id))} == {carol.user_id}


async def test_a_labelled_bot_message_is_edited_as_the_bot(
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
        event_id = await admin.send_text(room_id, "wrong")
        await eventually(
            lambda: [m["content"] for m in fake.messages(quiet)][-1:] == ["**Ada**: wrong"]
        )
        await admin.send_message(room_id, matrix_edit(event_id, "right"))
        await eventually(
            lambda: [m["content"] for m in fake.messages(quiet)][-1:] == ["**Ada**: right"]
        )


async def test_malformed_update_and_delete_dispatches_are_skipped(
    discord_bridge, discord_world, bridge_env, uid, caplog
):
    caplog.set_level(logging.WARNING, logger="bridgekit.discord")
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        identifies = len(fake.sessions)
        channel = world.general.id
        fake.send_raw_dispatch("MESSAGE_UPDATE", {"channel_id": channel, "content": "no id"})
        fake.send_raw_dispatch("MESSAGE_DELETE", {"channel_id": channel})
        fake.send_raw_dispatch("MESSAGE_DELETE_BULK", {"channel_id": channel, "ids": "nope"})
        fake.send_raw_dispatch("MESSAGE_UPDATE", "not even an object")
        sent = await fake.send_message(world.general, world.bob, "still here")
        original = await admin.wait_for_event(room_id, body_is("still here"))
        await fake.edit_message(world.general, sent["id"], "still here, edited")
        await admin.wait_for_event(room_id, replaces(original["event_id"], "still here, edited"))
        assert client.connected
        assert len(fake.sessions) == identifies  # the gateway connection was not dropped
        skipped = [r for r in caplog.records if "dispatch skipped" in r.getMessage()]
        assert len(skipped) == 4


async def test_a_relayed_thread_message_is_edited_and_deleted_in_its_thread(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        starter = await fake.send_message(world.general, world.bob, "a topic")
        root = await admin.wait_for_event(room_id, body_is("a topic"))
        thread = await fake.create_thread(world.general, starter["id"], "the topic", world.bob)
        carol = await carol_in(bridge_env, uid, admin, room_id)
        async with carol:
            event_id = await carol.send_message(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": "in the thread",
                    "m.relates_to": {"rel_type": "m.thread", "event_id": root["event_id"]},
                },
            )

            def contents() -> list[str]:
                return [m["content"] for m in fake.messages(thread) if m.get("webhook_id")]

            await eventually(lambda: contents() == ["in the thread"])
            await carol.send_message(room_id, matrix_edit(event_id, "in the thread, edited"))
            await eventually(lambda: contents() == ["in the thread, edited"])
            await carol.redact(room_id, event_id)
            await eventually(lambda: contents() == [])
