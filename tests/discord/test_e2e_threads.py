"""Discord threads and forum posts <-> ``m.thread``s in their parent channel's room: fake
Discord (real discord.py on the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.discord.conftest import body_is, login_bot, open_channel
from tests.discord.personal_helpers import login_user
from tests.harness.discord_fake import GUILD_FORUM, MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent

PRIVATE_THREAD = 12


def in_thread(root_event_id: str, text: str) -> Any:
    def match(e: dict[str, Any]) -> bool:
        content = e.get("content", {})
        rel = content.get("m.relates_to") or {}
        return (
            e.get("type") == "m.room.message"
            and content.get("body") == text
            and rel.get("rel_type") == "m.thread"
            and rel.get("event_id") == root_event_id
        )

    return match


def thread_message(root_event_id: str, text: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": text,
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": root_event_id,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root_event_id},
        },
    }


async def test_a_thread_started_from_a_message_is_an_m_thread_on_it(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        root = await fake.send_message(world.general, world.alice, "shall we talk about it?")
        root_evt = await admin.wait_for_event(room_id, body_is("shall we talk about it?"))
        thread = await fake.create_thread(world.general, root["id"], "talk", world.bob)
        assert thread.id == root["id"]
        # Discord opens such a thread with a "thread starter" system message (type 21)
        starter = fake.new_message(fake.channels[thread.id], world.bob.id, "", type=21)
        starter.reference = {"message_id": root["id"], "channel_id": world.general.id}
        fake.dispatch_message("MESSAGE_CREATE", starter)
        await fake.send_message(world.general, world.bob, "in the thread", thread=thread)
        evt = await admin.wait_for_event(room_id, in_thread(root_evt["event_id"], "in the thread"))
        assert evt["sender"] == world.ghost(world.bob)
        # Matrix -> Discord: a reply in the m.thread goes into the Discord thread
        await admin.send_message(room_id, thread_message(root_evt["event_id"], "from matrix"))

        def sent() -> list:
            return [m for m in fake.messages(thread) if m["content"] == "from matrix"]

        await eventually(lambda: bool(sent()))
        assert sent()[0].get("webhook_id")
        assert not [m for m in fake.messages(world.general) if m["content"] == "from matrix"]
        hook_posts = [r for r in fake.requests_to("POST", "/webhooks/*") if r.json]
        assert any(r.query.get("thread_id") == thread.id for r in hook_posts)
        # its echo (in the thread, from the webhook) is not bridged back
        await fake.send_message(world.general, world.bob, "after", thread=thread)
        await admin.wait_for_event(room_id, in_thread(root_evt["event_id"], "after"))
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        assert bodies.count("from matrix") == 1
        assert "" not in bodies  # the thread starter system message is not bridged


async def test_a_thread_without_a_starter_message_is_rooted_at_a_notice(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        thread = await fake.create_thread(world.general, None, "planning", world.alice)
        await fake.send_message(world.general, world.alice, "first in planning", thread=thread)
        root = await admin.wait_for_event(
            room_id,
            lambda e: (
                "planning" in e.get("content", {}).get("body", "")
                and e["content"].get("msgtype") == "m.notice"
            ),
        )
        assert root["sender"] == world.ghost(world.alice)
        assert "m.relates_to" not in root["content"]
        await admin.wait_for_event(room_id, in_thread(root["event_id"], "first in planning"))
        # the "started a thread" system message in the channel is not bridged as text
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        assert "planning" not in bodies
        # a private thread too
        secret = fake.open_thread(world.general, "secret", world.alice.id, type=PRIVATE_THREAD)
        await fake.send_message(world.general, world.alice, "psst", thread=secret)
        secret_root = await admin.wait_for_event(
            room_id, lambda e: "secret" in e.get("content", {}).get("body", "")
        )
        await admin.wait_for_event(room_id, in_thread(secret_root["event_id"], "psst"))
        # Matrix -> Discord into that thread
        await admin.send_message(room_id, thread_message(root["event_id"], "count me in"))
        await eventually(lambda: any(m["content"] == "count me in" for m in fake.messages(thread)))


async def test_a_matrix_thread_on_a_discord_message_makes_a_discord_thread(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        root = await fake.send_message(
            world.general, world.bob, "Release 2.0 is out!\nDetails below."
        )
        root_evt = await admin.wait_for_event(room_id, body_is(root["content"]))
        await admin.send_message(room_id, thread_message(root_evt["event_id"], "congrats"))

        def threads() -> list:
            return [
                c for c in fake.channels.values() if c.is_thread and c.parent_id == world.general.id
            ]

        await eventually(lambda: bool(threads()))
        [thread] = threads()
        assert thread.id == root["id"]
        assert thread.name == "Release 2.0 is out!"
        await eventually(lambda: [m["content"] for m in fake.messages(thread)] == ["congrats"])
        # the next Matrix message in that m.thread uses the thread made for the first
        await admin.send_message(room_id, thread_message(root_evt["event_id"], "again"))
        await eventually(lambda: len(fake.messages(thread)) == 2)
        assert len(fake.requests_to("POST", f"/channels/*/messages/{root['id']}/threads")) == 1
        # and a Discord reply in it comes back in the m.thread
        await fake.send_message(world.general, world.alice, "thanks", thread=thread)
        await admin.wait_for_event(room_id, in_thread(root_evt["event_id"], "thanks"))


async def test_forum_posts_are_threads_of_the_forum_room_with_their_title(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    forum = fake.add_channel(world.guild, "help", type=GUILD_FORUM)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        post = await fake.create_forum_post(forum, world.bob, "Printer on fire", "What now?")
        room_id, _ = await admin.wait_for_invite()
        await admin.join(room_id)
        root = await admin.wait_for_event(room_id, body_is("Printer on fire\nWhat now?"))
        assert root["content"]["formatted_body"].startswith("<strong>Printer on fire</strong>")
        assert "m.relates_to" not in root["content"]
        assert (await admin.get_state(room_id, "m.room.name"))["name"] == "#help"
        await fake.send_message(forum, world.alice, "unplug it", thread=post)
        await admin.wait_for_event(room_id, in_thread(root["event_id"], "unplug it"))
        await admin.send_message(room_id, thread_message(root["event_id"], "and run"))
        await eventually(lambda: any(m["content"] == "and run" for m in fake.messages(post)))


async def test_a_renamed_or_archived_thread_is_told_in_its_m_thread(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        root = await fake.send_message(world.general, world.alice, "topic")
        root_evt = await admin.wait_for_event(room_id, body_is("topic"))
        thread = await fake.create_thread(world.general, root["id"], "old name", world.bob)
        await fake.send_message(world.general, world.bob, "hi", thread=thread)
        await admin.wait_for_event(room_id, in_thread(root_evt["event_id"], "hi"))
        await fake.update_channel(thread, name="new name")
        await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "renamed the thread to “new name”")
        )
        fake.change_channel(fake.channels[thread.id], {"archived": True})
        await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "The thread was archived")
        )
        # reopened (discord.py no longer holds an archived thread), then a name given again
        # is told again
        fake.change_channel(fake.channels[thread.id], {"archived": False})
        await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "The thread was reopened")
        )
        await fake.update_channel(thread, name="old name")
        await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "renamed the thread to “old name”")
        )
        await fake.update_channel(thread, name="new name")

        async def told_twice() -> bool:
            bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
            return bodies.count("renamed the thread to “new name”") == 2

        await eventually(told_twice)
        # deleted: told, and a Matrix reply in the m.thread makes a new thread from the root
        await fake.delete_channel(thread)
        await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "The thread was deleted")
        )
        await admin.send_message(room_id, thread_message(root_evt["event_id"], "still here"))
        await eventually(lambda: root["id"] in fake.channels)
        again = fake.channels[root["id"]]
        await eventually(lambda: [m["content"] for m in fake.messages(again)] == ["still here"])


async def test_a_matrix_message_in_a_forum_room_is_a_new_post(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    forum = fake.add_channel(world.guild, "ideas", type=GUILD_FORUM)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada")
        await login_bot(discord_bridge, admin, world)
        first = await fake.create_forum_post(forum, world.bob, "Dark mode", "please")
        room_id, _ = await admin.wait_for_invite()
        await admin.join(room_id)
        await admin.wait_for_event(room_id, body_is("Dark mode\nplease"))
        event_id = await admin.send_text(room_id, "Faster builds\nThey take an hour.")

        def posts() -> list:
            return [
                c
                for c in fake.channels.values()
                if c.is_thread and c.parent_id == forum.id and c.id != first.id
            ]

        await eventually(lambda: bool(posts()))
        [post] = posts()
        assert post.name == "Faster builds"
        [msg] = fake.messages(post)
        assert msg["content"] == "Faster builds\nThey take an hour."
        assert msg["id"] == post.id and msg.get("webhook_id")
        assert msg["author"]["username"].startswith("Ada")
        # an answer on Discord is in the m.thread of the Matrix message
        await fake.send_message(forum, world.alice, "yes!", thread=post)
        await admin.wait_for_event(room_id, in_thread(event_id, "yes!"))


async def test_a_thread_made_while_the_bridge_was_away_gets_its_root_first(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    # made before the bot is logged in: its THREAD_CREATE reaches no session of the bridge
    thread = await fake.create_thread(world.general, None, "backlog", world.alice)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await fake.send_message(world.general, world.alice, "still open", thread=thread)
        root = await admin.wait_for_event(
            room_id, lambda e: "backlog" in e.get("content", {}).get("body", "")
        )
        assert root["content"]["msgtype"] == "m.notice"
        await admin.wait_for_event(room_id, in_thread(root["event_id"], "still open"))
        await fake.send_message(world.general, world.alice, "again", thread=thread)
        await admin.wait_for_event(room_id, in_thread(root["event_id"], "again"))
        roots = [
            e
            for e in await admin.messages(room_id)
            if "backlog" in e.get("content", {}).get("body", "")
        ]
        assert len(roots) == 1


async def test_where_webhooks_are_forbidden_the_bot_posts_in_the_thread_itself(
    discord_bridge, discord_world, bridge_env, uid
):
    """The bot's own sends (as a personal login's are: ``Outbound.as_user``) go to the
    thread's channel, and make the thread when there is none."""
    world = discord_world
    fake = world.fake
    quiet = fake.add_channel(world.guild, "quiet")
    fake.set_overwrite(quiet, world.bot, deny=MANAGE_WEBHOOKS)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada")
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, quiet, world.bob)
        root = await fake.send_message(quiet, world.bob, "who is in?")
        root_evt = await admin.wait_for_event(room_id, body_is("who is in?"))
        thread = await fake.create_thread(quiet, root["id"], "roll call", world.bob)
        await admin.send_message(room_id, thread_message(root_evt["event_id"], "me"))
        await eventually(lambda: any("me" in m["content"] for m in fake.messages(thread)))
        [msg] = fake.messages(thread)
        assert msg["author"]["id"] == world.bot.id and not msg.get("webhook_id")
        assert msg["content"] == "**Ada**: me"
        # a Matrix thread on a message with no Discord thread: made by the bot's account
        other = await fake.send_message(quiet, world.bob, "lunch?")
        other_evt = await admin.wait_for_event(room_id, body_is("lunch?"))
        await admin.send_message(room_id, thread_message(other_evt["event_id"], "pizza"))
        await eventually(lambda: other["id"] in fake.channels)
        made = fake.channels[other["id"]]
        assert made.owner_id == world.bot.id and made.name == "lunch?"
        await eventually(lambda: [m["content"] for m in fake.messages(made)] == ["**Ada**: pizza"])


async def test_a_personal_login_posts_in_the_thread_as_itself(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice_mx = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice_mx:
        await login_bot(discord_bridge, admin, world)
        await login_user(discord_bridge, alice_mx, fake, world.alice)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await admin.invite(room_id, alice_mx.user_id)
        await alice_mx.join(room_id)
        root = await fake.send_message(world.general, world.bob, "who is in?")
        root_evt = await alice_mx.wait_for_event(room_id, body_is("who is in?"))
        thread = await fake.create_thread(world.general, root["id"], "roll call", world.bob)
        await alice_mx.send_message(room_id, thread_message(root_evt["event_id"], "me"))
        await eventually(lambda: any(m["content"] == "me" for m in fake.messages(thread)))
        [msg] = [m for m in fake.messages(thread) if m["content"] == "me"]
        assert msg["author"]["id"] == world.alice.id and not msg.get("webhook_id")
        # a Matrix thread on a message with no Discord thread: made by her account
        other = await fake.send_message(world.general, world.bob, "lunch?")
        other_evt = await alice_mx.wait_for_event(room_id, body_is("lunch?"))
        await alice_mx.send_message(room_id, thread_message(other_evt["event_id"], "pizza"))
        await eventually(lambda: other["id"] in fake.channels)
        made = fake.channels[other["id"]]
        assert made.owner_id == world.alice.id and made.name == "lunch?"
        await eventually(lambda: [m["content"] for m in fake.messages(made)] == ["pizza"])
        # her messages are not bridged back (echoes of her own login)
        await fake.send_message(world.general, world.bob, "marker", thread=made)
        await admin.wait_for_event(room_id, body_is("marker"))
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        assert bodies.count("pizza") == 1 and bodies.count("me") == 1
