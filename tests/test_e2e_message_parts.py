"""Messages in parts end to end (real Synapse, fake network): one remote message sent as
several Matrix events stays one message for replies, reactions, edits and redactions, and one
Matrix message the network took as several remote ids maps back from each of them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from bridgekit.bridge import Bridge
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    MessagePart,
    PortalKey,
    RemoteEdit,
    RemoteReaction,
    RemoteRedaction,
)
from bridgekit.testing.media_servers import PNG
from bridgekit.testing.ports import free_port
from tests.conftest import BridgeEnv, eventually
from tests.helpers import BridgeProcess, body_is, ghost, portal_scene

TEXT, MEDIA = "text", "media"


def three_parts(tag: str) -> list[MessagePart]:
    return [
        MessagePart("", MessageContent(f"{tag} caption")),
        MessagePart("file-1", MessageContent(f"{tag} first file", msgtype="m.notice")),
        MessagePart("file-2", MessageContent(f"{tag} second file", msgtype="m.notice")),
    ]


def from_ghost(prefix: str):
    return lambda e: (
        e.get("type") == "m.room.message"
        and e["sender"] == ghost("bob")
        and e["content"].get("body", "").startswith(prefix)
        and "m.new_content" not in e["content"]
    )


def redacted(event_id: str):
    return lambda e: (
        e.get("type") == "m.room.redaction"
        and event_id
        in (
            e.get("redacts"),
            e.get("content", {}).get("redacts"),
        )
    )


async def test_parts_arrive_in_order_and_map_back_to_one_message(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        msg_id = await client.remote_parts(chat, "bob", three_parts("p1"))
        await alice.wait_for_event(room_id, body_is("p1 second file"))
        parts = [e for e in alice.history(room_id) if from_ghost("p1")(e)]
        assert [e["content"]["body"] for e in parts] == [
            "p1 caption",
            "p1 first file",
            "p1 second file",
        ]
        assert [e["content"]["msgtype"] for e in parts] == ["m.text", "m.notice", "m.notice"]
        first, second, third = (e["event_id"] for e in parts)

        # Matrix -> remote: a reaction on the 2nd part and a reply to the 3rd name the message.
        await alice.react(room_id, second, "👍")
        reaction = await net.wait_for(lambda i: i.kind == "reaction")
        assert reaction.data.target_id == msg_id and reaction.data.key == "👍"
        reply_id = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "nice file",
                "m.relates_to": {"m.in_reply_to": {"event_id": third}},
            },
        )
        reply = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == reply_id)
        assert reply.data.content.reply_to == msg_id

        # remote -> Matrix: a reaction and a reply to the message land on its first part.
        await client.emit(
            RemoteReaction(PortalKey(chat), EventSender("bob"), target_id=msg_id, key="🎉")
        )
        annotation = await alice.wait_for_event(
            room_id, lambda e: e.get("type") == "m.reaction" and e["sender"] == ghost("bob")
        )
        assert annotation["content"]["m.relates_to"]["event_id"] == first
        await client.remote_message(chat, "bob", "p1 answer", reply_to=msg_id)
        answer = await alice.wait_for_event(room_id, body_is("p1 answer"))
        assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == first

        # Each part once in the room and once in the message table, under the one remote id.
        rows = await bridge.store.message_parts("fake", PortalKey(chat), msg_id)
        assert {r.part: r.event_id for r in rows} == {
            "": first,
            "file-1": second,
            "file-2": third,
        }
        # A duplicate delivery of the whole message sends nothing again.
        await client.remote_parts(chat, "bob", three_parts("p1"), msg_id=msg_id)
        await client.remote_message(chat, "bob", "p1 after the duplicate")
        await alice.wait_for_event(room_id, body_is("p1 after the duplicate"))
        assert len([e for e in alice.history(room_id) if from_ghost("p1 ")(e)]) == 5


async def test_edit_of_a_part_and_redaction_of_all_parts(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        msg_id = await client.remote_parts(chat, "bob", three_parts("p2"))
        await alice.wait_for_event(room_id, body_is("p2 second file"))
        first, second, third = (
            e["event_id"] for e in alice.history(room_id) if from_ghost("p2")(e)
        )

        def edit_of(event_id: str):
            return lambda e: (
                e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace"
                and e["content"]["m.relates_to"]["event_id"] == event_id
            )

        key = PortalKey(chat)
        content = MessageContent("p2 renamed file", msgtype="m.notice")
        await client.emit(
            RemoteEdit(
                key, EventSender("bob"), target_id=msg_id, content=content, target_part="file-2"
            )
        )
        edit = await alice.wait_for_event(room_id, edit_of(third))
        assert edit["content"]["m.new_content"]["body"] == "p2 renamed file"
        # No part named: the first part (the caption).
        await client.emit(
            RemoteEdit(key, EventSender("bob"), target_id=msg_id, content=MessageContent("p2 new"))
        )
        edit = await alice.wait_for_event(room_id, edit_of(first))
        assert edit["content"]["m.new_content"]["body"] == "p2 new"
        # A part the message does not have edits nothing.
        await client.emit(
            RemoteEdit(key, EventSender("bob"), target_id=msg_id, content=content, target_part="x")
        )

        await client.emit(RemoteRedaction(key, EventSender("bob"), target_id=msg_id))
        for event_id in (first, second, third):
            await alice.wait_for_event(room_id, redacted(event_id))
        assert await bridge.store.message_parts("fake", key, msg_id) == []
        assert not [e for e in alice.history(room_id) if edit_of(second)(e)]


async def test_matrix_edit_and_redaction_of_a_part_name_the_one_remote_message(
    make_bridge, bridge_env: BridgeEnv, uid
):
    """Alice's own message in parts, sent from her phone, shows as hers (double puppet): her
    edit of its 2nd part and her redaction of its 3rd reach the network as the one message."""
    from tests.helpers import DOMAIN, fake, login

    bridge = await make_bridge(
        **{"double_puppet.secrets": {DOMAIN: f"as_token:{bridge_env.dp_token}"}}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        msg_id = await client.remote_parts(chat, client.login.remote_id, three_parts("p3"))
        last = await alice.wait_for_event(None, body_is("p3 second file"))
        room_id = last["room_id"]
        mine = [
            e["event_id"]
            for e in alice.history(room_id)
            if e.get("type") == "m.room.message" and e["content"]["body"].startswith("p3")
        ]
        assert len(mine) == 3 and last["sender"] == alice.user_id
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.notice",
                "body": "* p3 better file",
                "m.new_content": {"msgtype": "m.notice", "body": "p3 better file"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": mine[1]},
            },
        )
        edit = await net.wait_for(lambda i: i.kind == "edit")
        assert (edit.data.target_id, edit.data.target_part) == (msg_id, "file-1")
        assert edit.data.content.body == "p3 better file"
        await alice.redact(room_id, mine[2])
        redaction = await net.wait_for(lambda i: i.kind == "redaction")
        assert redaction.data.target_id == msg_id


async def test_several_remote_ids_for_one_matrix_message(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """A Matrix message the network split (IRC lines, each with its msgid): a reply, reaction,
    edit or redaction from the network naming any of its ids finds the one Matrix event."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        net.ids_per_message = 3
        event_id = await alice.send_text(room_id, "a long message the network splits")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        net.ids_per_message = 1
        first_id, second_id, third_id = sent.remote_id, *sent.extra_ids
        key = PortalKey(chat)

        await client.remote_message(chat, "bob", "answer to the 2nd line", reply_to=second_id)
        answer = await alice.wait_for_event(room_id, body_is("answer to the 2nd line"))
        assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
        await client.emit(RemoteReaction(key, EventSender("bob"), target_id=third_id, key="👀"))
        annotation = await alice.wait_for_event(
            room_id, lambda e: e.get("type") == "m.reaction" and e["sender"] == ghost("bob")
        )
        assert annotation["content"]["m.relates_to"]["event_id"] == event_id
        # Each id's echo is recognised: none comes back as a message.
        for rid in (third_id, first_id, second_id):
            await client.remote_message(chat, client.login.remote_id, "echo", msg_id=rid)
        await client.remote_message(chat, "bob", "after the echoes")
        await alice.wait_for_event(room_id, body_is("after the echoes"))
        assert not [e for e in alice.history(room_id) if body_is("echo")(e)]


async def test_a_crash_between_parts_resumes_with_the_missing_parts(
    bridge_env: BridgeEnv, uid, tmp_path, db_url
):
    """SIGKILL while the 3rd part's file is being fetched (the first two are in the room):
    after the restart the outbox replays the message, and only the 3rd part is sent."""
    from tests.test_e2e_reliability import _log_in_and_open_portal, _write_config

    media_port, inbox_port = free_port(), free_port()
    release = asyncio.Event()
    hits: list[float] = []

    async def slow_png(request: web.Request) -> web.Response:
        hits.append(asyncio.get_running_loop().time())
        await release.wait()  # set once the bridge is killed (a sleep would hold cleanup 60 s)
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/slow.png", slow_png)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", media_port).start()

    cfg = tmp_path / "config.yaml"
    alice = await bridge_env.synapse.register_user(uid("alice"))
    chat, remote = uid("chat"), uid("a")
    _write_config(
        bridge_env,
        cfg,
        db_url,
        **{
            "networks.fake.inbox_port": inbox_port,
            "networks.fake.chats": {chat: [remote, "bob"]},
            "media": {"allow": [f"127.0.0.1:{media_port}"]},
            "logging.level": "WARNING",
        },
    )
    parts = [
        {"id": "", "body": "crash caption"},
        {"id": "f1", "body": "crash note", "msgtype": "m.notice"},
        {"id": "f2", "body": "crash.png", "msgtype": "m.image",
         "media_url": f"http://127.0.0.1:{media_port}/slow.png"},
    ]  # fmt: skip

    async def deliver() -> None:
        for _ in range(150):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", inbox_port)
                break
            except OSError:  # the bridge is (re)starting
                await asyncio.sleep(0.2)
        else:
            raise AssertionError("the fake network's inbox never opened")
        line = {"chat": chat, "sender": "bob", "body": "", "id": "crash-1", "parts": parts}
        writer.write(json.dumps(line).encode() + b"\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 30) == b"ok crash-1\n"
        writer.close()

    async def crash_events() -> list[dict[str, Any]]:
        events = await alice.messages(room_id, limit=100)
        return [
            e
            for e in events
            if e["type"] == "m.room.message" and e["content"].get("body", "").startswith("crash")
        ]

    bridge = BridgeProcess(cfg, tmp_path / "bridge.out")
    bridge.start()
    try:
        async with alice:
            room_id = await _log_in_and_open_portal(alice, bridge_env, remote, chat)
            await deliver()
            await eventually(lambda: bool(hits), timeout=60)  # the 3rd part is being fetched
            before = [e["content"]["body"] for e in await crash_events()]
            assert before == ["crash caption", "crash note"], bridge.log_tail()
            bridge.kill_9()
            release.set()
            bridge.start()

            async def all_there() -> bool:
                return len(await crash_events()) >= 3

            await eventually(all_there, timeout=90)
            await asyncio.sleep(1.5)  # a duplicate would show up now
            got = await crash_events()
            assert [e["content"]["body"] for e in got] == [
                "crash caption",
                "crash note",
                "crash.png",
            ], bridge.log_tail()
            assert got[2]["content"]["url"].startswith("mxc://")
    finally:
        bridge.kill_9()
        await runner.cleanup()
