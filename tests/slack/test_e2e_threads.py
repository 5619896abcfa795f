"""Threads both ways between Slack and Matrix (``m.thread``), "also send to channel"
broadcasts, Matrix replies, and edits, deletes and reactions on thread messages: fake Slack
(real slack-sdk) <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.slack.conftest import body_is, login_app, open_channel

pytestmark = pytest.mark.engine_independent


def rel(evt: dict[str, Any]) -> dict[str, Any]:
    return evt.get("content", {}).get("m.relates_to") or {}


def in_thread(root: str, text: str) -> Any:
    return lambda e: (
        body_is(text)(e)
        and rel(e).get("rel_type") == "m.thread"
        and (rel(e).get("event_id") == root)
    )


def not_in_thread(text: str) -> Any:
    return lambda e: body_is(text)(e) and rel(e).get("rel_type") is None


def replacing(target: str, text: str) -> Any:
    def match(e: dict[str, Any]) -> bool:
        r = rel(e)
        new = e.get("content", {}).get("m.new_content") or {}
        return r.get("rel_type") == "m.replace" and r["event_id"] == target and new["body"] == text

    return match


def redacting(target: str) -> Any:
    return lambda e: (
        e.get("type") == "m.room.redaction"
        and (e.get("redacts") == target or e.get("content", {}).get("redacts") == target)
    )


async def setup(bridge, world, admin) -> str:
    """The app logged in by ``admin``, and the portal of #general (its room id)."""
    await login_app(bridge, admin, world)
    return await open_channel(bridge, world, admin, world.general, world.bob)


async def test_slack_thread_reply_and_broadcast_reach_matrix(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        room_id = await setup(slack_bridge, w, admin)
        root = fake.post_user_message(w.general.id, w.bob.id, "thread root")
        root_evt = await admin.wait_for_event(room_id, body_is("thread root"))
        fake.post_user_message(w.general.id, w.alice.id, "in the thread", thread_ts=root.ts)
        reply = await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "in the thread")
        )
        assert reply["sender"] == w.ghost(w.alice)
        # "also send to channel": in the thread, and visible in the main timeline
        fake.post_user_message(
            w.general.id, w.alice.id, "for everyone", thread_ts=root.ts, reply_broadcast=True
        )
        threaded = await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "for everyone")
        )
        visible = await admin.wait_for_event(room_id, not_in_thread("for everyone"))
        assert rel(visible)["m.in_reply_to"]["event_id"] == root_evt["event_id"]
        assert threaded["sender"] == visible["sender"] == w.ghost(w.alice)
        # a Slack thread under a message from Matrix
        mx_root = await admin.send_text(room_id, "asked on matrix")
        await eventually(
            lambda: any(m.text == "asked on matrix" for m in fake.messages[w.general.id])
        )
        slack_root = next(m for m in fake.messages[w.general.id] if m.text == "asked on matrix")
        fake.post_user_message(w.general.id, w.bob.id, "answered on slack", thread_ts=slack_root.ts)
        await admin.wait_for_event(room_id, in_thread(mx_root, "answered on slack"))


async def test_broadcast_edit_and_delete_reach_both_copies(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        room_id = await setup(slack_bridge, w, admin)
        root = fake.post_user_message(w.general.id, w.bob.id, "root")
        root_evt = await admin.wait_for_event(room_id, body_is("root"))
        bc = fake.post_user_message(
            w.general.id, w.alice.id, "broadcast", thread_ts=root.ts, reply_broadcast=True
        )
        threaded = await admin.wait_for_event(room_id, in_thread(root_evt["event_id"], "broadcast"))
        visible = await admin.wait_for_event(room_id, not_in_thread("broadcast"))
        fake.edit_message(w.general.id, bc.ts, "broadcast, edited")
        await admin.wait_for_event(room_id, replacing(threaded["event_id"], "broadcast, edited"))
        await admin.wait_for_event(room_id, replacing(visible["event_id"], "broadcast, edited"))
        fake.delete_message(w.general.id, bc.ts)
        await admin.wait_for_event(room_id, redacting(threaded["event_id"]))
        await admin.wait_for_event(room_id, redacting(visible["event_id"]))


async def test_matrix_thread_messages_and_replies_reach_the_slack_thread(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        room_id = await setup(slack_bridge, w, admin)
        root = fake.post_user_message(w.general.id, w.bob.id, "root")
        root_evt = await admin.wait_for_event(room_id, body_is("root"))
        reply = fake.post_user_message(
            w.general.id, w.alice.id, "alice in thread", thread_ts=root.ts
        )
        reply_evt = await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "alice in thread")
        )
        top = fake.post_user_message(w.general.id, w.bob.id, "top level")
        top_evt = await admin.wait_for_event(room_id, body_is("top level"))

        def sent(text: str) -> Any:
            return lambda: next(
                (c.params for c in fake.calls("chat.postMessage") if c.params.get("text") == text),
                None,
            )

        async def posted(text: str) -> dict[str, Any]:
            await eventually(sent(text))
            return sent(text)()

        # a message in the thread (as Element sends it: reply fallback to the latest event)
        await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "matrix in thread",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root_evt["event_id"],
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": reply_evt["event_id"]},
                },
            },
        )
        params = await posted("matrix in thread")
        assert params["thread_ts"] == root.ts and not params.get("reply_broadcast")
        # a reply inside the thread
        await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "> <@x:y> alice in thread\n\nreply in thread",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root_evt["event_id"],
                    "is_falling_back": False,
                    "m.in_reply_to": {"event_id": reply_evt["event_id"]},
                },
            },
        )
        params = await posted("reply in thread")
        assert params["thread_ts"] == root.ts and not params.get("reply_broadcast")
        # a main-timeline reply to a message in a thread: that thread, also to the channel
        await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "plain reply to a thread message",
                "m.relates_to": {"m.in_reply_to": {"event_id": reply_evt["event_id"]}},
            },
        )
        params = await posted("plain reply to a thread message")
        assert params["thread_ts"] == root.ts and params["reply_broadcast"] in (True, "true", "1")
        # a main-timeline reply to a top-level message: its thread, also to the channel
        await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "plain reply",
                "m.relates_to": {"m.in_reply_to": {"event_id": top_evt["event_id"]}},
            },
        )
        params = await posted("plain reply")
        assert params["thread_ts"] == top.ts and params["reply_broadcast"] in (True, "true", "1")
        stored = {m.text: m for m in fake.messages[w.general.id]}
        assert stored["matrix in thread"].thread_ts == root.ts
        assert stored["plain reply"].thread_ts == top.ts
        assert stored["plain reply"].reply_broadcast
        assert reply.thread_ts == root.ts


async def test_edits_deletes_and_reactions_on_thread_messages_both_ways(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        room_id = await setup(slack_bridge, w, admin)
        root = fake.post_user_message(w.general.id, w.bob.id, "root")
        root_evt = await admin.wait_for_event(room_id, body_is("root"))
        reply = fake.post_user_message(w.general.id, w.alice.id, "threaded", thread_ts=root.ts)
        reply_evt = await admin.wait_for_event(room_id, in_thread(root_evt["event_id"], "threaded"))
        # Slack -> Matrix on the thread message
        fake.edit_message(w.general.id, reply.ts, "threaded, edited")
        await admin.wait_for_event(room_id, replacing(reply_evt["event_id"], "threaded, edited"))
        fake.add_reaction(w.general.id, reply.ts, w.bob.id, "tada")
        reaction = await admin.wait_for_event(
            room_id,
            lambda e: e["type"] == "m.reaction" and rel(e).get("event_id") == reply_evt["event_id"],
        )
        assert rel(reaction)["key"] == "🎉" and reaction["sender"] == w.ghost(w.bob)
        fake.delete_message(w.general.id, reply.ts)
        await admin.wait_for_event(room_id, redacting(reply_evt["event_id"]))
        # Matrix -> Slack on a Matrix message in the thread
        mine = await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "mine in thread",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root_evt["event_id"],
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root_evt["event_id"]},
                },
            },
        )

        def find(text: str) -> Any:
            return next((m for m in fake.messages[w.general.id] if m.text == text), None)

        await eventually(lambda: find("mine in thread") is not None)
        slack_msg = find("mine in thread")
        assert slack_msg.thread_ts == root.ts
        await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* mine, edited",
                "m.new_content": {"msgtype": "m.text", "body": "mine, edited"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": mine},
            },
        )
        await eventually(lambda: slack_msg.text == "mine, edited")
        await admin.react(room_id, mine, "👍")
        await eventually(lambda: "+1" in slack_msg.reactions)
        await admin.redact(room_id, mine)
        await eventually(lambda: find("mine, edited") is None)
        assert [c.params["ts"] for c in fake.calls("chat.delete")] == [slack_msg.ts]


async def test_deleting_a_thread_root_with_replies_redacts_it_and_keeps_the_replies(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        room_id = await setup(slack_bridge, w, admin)
        root = fake.post_user_message(w.general.id, w.bob.id, "root to delete")
        root_evt = await admin.wait_for_event(room_id, body_is("root to delete"))
        fake.post_user_message(w.general.id, w.alice.id, "a reply that stays", thread_ts=root.ts)
        reply_evt = await admin.wait_for_event(
            room_id, in_thread(root_evt["event_id"], "a reply that stays")
        )
        fake.delete_message(w.general.id, root.ts)  # Slack: a tombstone (message_changed)
        await admin.wait_for_event(room_id, redacting(root_evt["event_id"]))
        fake.post_user_message(w.general.id, w.bob.id, "after the delete")
        await admin.wait_for_event(room_id, body_is("after the delete"))
        events = await admin.messages(room_id)
        assert not [e for e in events if body_is("This message was deleted.")(e)]
        assert not [e for e in events if redacting(reply_evt["event_id"])(e)]
