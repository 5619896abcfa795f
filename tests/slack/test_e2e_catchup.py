"""Catch-up after an outage and history of new portals (bridges/slack/history.py): what Slack
users said while the bridge was away reaches Matrix once, in order, before what they say next;
fake Slack (real slack-sdk) <-> bridge <-> real Synapse. Persistence: both engines."""

from __future__ import annotations

from typing import Any

from bridgekit.bridge import Bridge
from tests.conftest import eventually
from tests.slack.conftest import body_is, login_app, open_channel, slack_networks


def said(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e.get("type") == "m.room.message"]


async def restart(make_bridge: Any, bridge: Bridge, fake: Any, **backfill: Any) -> Bridge:
    await make_bridge.stop(bridge)
    return await make_bridge(**config(fake, **backfill))


def config(fake: Any, **backfill: Any) -> dict[str, Any]:
    return {
        "networks": slack_networks(fake),
        "media": {"allow": [f"127.0.0.1:{fake.port}"]},
        "bridge.backfill": {"initial_limit": 0, **backfill},
    }


async def test_messages_said_while_the_bridge_was_stopped_arrive_once_in_order(
    make_bridge, slack_world, bridge_env, uid
):
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        await make_bridge.stop(bridge)
        for i in range(3):
            fake.post_user_message(general.id, bob.id, f"missed {i}")
        # Slack gave up delivering them: only conversations.history has them now.
        assert fake.expire_unacked() == 3
        history_calls = len(fake.calls("conversations.history"))
        bridge = await make_bridge(**config(fake, page_size=2))
        await admin.wait_for_event(room_id, body_is("missed 2"), timeout=60)
        fake.post_user_message(general.id, bob.id, "live again")
        await admin.wait_for_event(room_id, body_is("live again"), timeout=30)
        events = await admin.messages(room_id)
        assert said(events) == ["first words", "missed 0", "missed 1", "missed 2", "live again"]
        for e in events:
            if e.get("type") == "m.room.message":
                assert e["sender"] == slack_world.ghost(bob)
        # Read from the newest bridged ts (exclusive), in pages of the runtime's size.
        calls = fake.calls("conversations.history")[history_calls:]
        gap = [c for c in calls if c.params.get("oldest")]
        first, missed = fake.messages[general.id][0], fake.messages[general.id][1:4]
        # page_size 2: two pages, the second from the first's end.
        assert [c.params["oldest"] for c in gap] == [first.ts, missed[1].ts]
        # Besides, one look per page at the threads before the gap (latest_reply).
        assert len(calls) == 2 * len(gap)


async def test_a_message_live_at_reconnect_neither_overtakes_nor_doubles_the_catch_up(
    make_bridge, slack_world, bridge_env, uid
):
    """Slack delivers an envelope the moment the socket is back, before the catch-up is
    queued: it must wait (else it lands before what was missed, or the catch-up starts after
    it and loses what was missed), and the catch-up that also returns it must not double it."""
    fake, general, bob, alice = (
        slack_world.fake,
        slack_world.general,
        slack_world.bob,
        slack_world.alice,
    )
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        await make_bridge.stop(bridge)
        for i in range(3):
            fake.post_user_message(general.id, bob.id, f"missed {i}")
        fake.expire_unacked()
        # Still undelivered when the bridge comes back: sent right after hello.
        fake.post_user_message(general.id, alice.id, "waiting at the door")
        # A slow catch-up: more said live while it reads.
        fake.delay("conversations.history", 2.0)
        bridge = await make_bridge(**config(fake))
        await eventually(lambda: fake.connected_sockets > 0, timeout=30)
        fake.post_user_message(general.id, bob.id, "said during the catch-up")
        await admin.wait_for_event(room_id, body_is("said during the catch-up"), timeout=60)
        fake.post_user_message(general.id, bob.id, "afterwards")
        await admin.wait_for_event(room_id, body_is("afterwards"), timeout=30)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "missed 0",
            "missed 1",
            "missed 2",
            "waiting at the door",
            "said during the catch-up",
            "afterwards",
        ]


async def test_thread_replies_said_while_away_come_after_their_root(
    make_bridge, slack_world, bridge_env, uid
):
    fake, general, bob, alice = (
        slack_world.fake,
        slack_world.general,
        slack_world.bob,
        slack_world.alice,
    )
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        await make_bridge.stop(bridge)
        root = fake.post_user_message(general.id, bob.id, "a question")
        fake.post_user_message(general.id, alice.id, "an answer", thread_ts=root.ts)
        fake.post_user_message(general.id, bob.id, "next topic")
        fake.expire_unacked()
        bridge = await make_bridge(**config(fake))
        await admin.wait_for_event(room_id, body_is("next topic"), timeout=60)
        await admin.wait_for_event(room_id, body_is("an answer"), timeout=30)
        events = [e for e in await admin.messages(room_id) if e.get("type") == "m.room.message"]
        assert said(events) == ["first words", "a question", "an answer", "next topic"]
        rel = events[2]["content"].get("m.relates_to") or {}
        assert rel.get("rel_type") == "m.thread"
        assert rel.get("event_id") == events[1]["event_id"]


async def test_a_new_portal_gets_recent_history(make_bridge, slack_world, bridge_env, uid):
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    for i in range(5):
        fake.post_user_message(general.id, bob.id, f"old {i}")
    fake.expire_unacked()
    bridge = await make_bridge(**config(fake, initial_limit=3))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        assert said(await admin.messages(room_id)) == ["old 3", "old 4", "first words"]


async def test_a_reply_to_an_older_thread_said_while_away_joins_its_thread(
    make_bridge, slack_world, bridge_env, uid
):
    fake, general, bob, alice = (
        slack_world.fake,
        slack_world.general,
        slack_world.bob,
        slack_world.alice,
    )
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        root = fake.post_user_message(general.id, bob.id, "an old question")
        root_event = await admin.wait_for_event(room_id, body_is("an old question"))
        fake.post_user_message(general.id, bob.id, "since then")
        await admin.wait_for_event(room_id, body_is("since then"))
        await make_bridge.stop(bridge)
        fake.post_user_message(general.id, alice.id, "a late answer", thread_ts=root.ts)
        fake.expire_unacked()
        bridge = await make_bridge(**config(fake))
        reply = await admin.wait_for_event(room_id, body_is("a late answer"), timeout=60)
        rel = reply["content"].get("m.relates_to") or {}
        assert (rel.get("rel_type"), rel.get("event_id")) == ("m.thread", root_event["event_id"])
        assert reply["sender"] == slack_world.ghost(alice)


async def test_socket_mode_back_after_a_drop_catches_up(make_bridge, slack_world, bridge_env, uid):
    """slack-sdk reconnects a dropped socket by itself: what was said while it was down and
    that Slack no longer delivers is caught up, before what is said once it is back."""
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        opened = len(fake.calls("apps.connections.open"))
        down = fake.hold("apps.connections.open")  # down until these are said
        assert await fake.drop_sockets() == 1
        for i in range(3):
            fake.post_user_message(general.id, bob.id, f"while down {i}")
        fake.expire_unacked()
        down.set()
        await eventually(lambda: len(fake.calls("apps.connections.open")) > opened, timeout=30)
        await eventually(lambda: fake.connected_sockets > 0, timeout=30)
        fake.post_user_message(general.id, bob.id, "back")
        await admin.wait_for_event(room_id, body_is("back"), timeout=60)
        assert said(await admin.messages(room_id)) == [
            "first words",
            "while down 0",
            "while down 1",
            "while down 2",
            "back",
        ]


async def test_a_planned_refresh_does_not_catch_up(make_bridge, slack_world, bridge_env, uid):
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        opened = len(fake.calls("apps.connections.open"))
        history = len(fake.calls("conversations.history"))
        assert await fake.request_refresh() == 1
        await eventually(lambda: len(fake.calls("apps.connections.open")) > opened, timeout=30)
        await eventually(lambda: fake.connected_sockets > 0, timeout=30)
        fake.post_user_message(general.id, bob.id, "after the refresh")
        await admin.wait_for_event(room_id, body_is("after the refresh"), timeout=30)
        assert len(fake.calls("conversations.history")) == history


async def test_files_and_broadcasts_said_while_away_arrive_as_live_ones_do(
    make_bridge, slack_world, bridge_env, uid
):
    """Catch-up builds messages the way live events are built: a message with a file is one
    message in parts (text, then the file), a broadcast thread reply is in its thread and in
    the main timeline."""
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    bridge = await make_bridge(**config(fake))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(bridge, admin, slack_world)
        room_id = await open_channel(bridge, slack_world, admin, general, bob)
        root = fake.messages[general.id][0]
        await make_bridge.stop(bridge)
        notes = fake.add_file(slack_world.team.id, bob.id, "notes.txt", b"minutes\n")
        fake.post_user_message(general.id, bob.id, "see the notes", files=[notes])
        fake.post_user_message(
            general.id, bob.id, "said in the thread too", thread_ts=root.ts, reply_broadcast=True
        )
        fake.expire_unacked()
        bridge = await make_bridge(**config(fake))
        text = await admin.wait_for_event(room_id, body_is("see the notes"), timeout=60)
        file_evt = await admin.wait_for_event(room_id, body_is("notes.txt"), timeout=30)
        assert file_evt["content"]["msgtype"] == "m.file"
        assert text["origin_server_ts"] <= file_evt["origin_server_ts"]
        root_evt = await admin.wait_for_event(room_id, body_is("first words"))

        def in_thread(e: dict[str, Any]) -> bool:
            rel = e.get("content", {}).get("m.relates_to") or {}
            return (
                e.get("content", {}).get("body") == "said in the thread too"
                and rel.get("rel_type") == "m.thread"
                and rel.get("event_id") == root_evt["event_id"]
            )

        def in_timeline(e: dict[str, Any]) -> bool:
            rel = e.get("content", {}).get("m.relates_to") or {}
            return (
                e.get("content", {}).get("body", "").endswith("said in the thread too")
                and rel.get("rel_type") != "m.thread"
            )

        await admin.wait_for_event(room_id, in_thread, timeout=30)
        await admin.wait_for_event(room_id, in_timeline, timeout=30)
