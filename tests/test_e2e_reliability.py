"""Nothing lost, nothing doubled: restarts, crashes and homeserver outages."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from bridgekit.contract.events import EventSender, MessageContent, PortalKey, RemoteMessage
from bridgekit.instance_lock import DatabaseInUse
from bridgekit.testing.ports import free_port
from tests.conftest import BridgeEnv, eventually
from tests.helpers import BridgeProcess, body_is, fake, portal_scene


def bodies(client, room_id: str, prefix: str) -> list[str]:
    return [
        e["content"]["body"]
        for e in client.history(room_id)
        if e.get("type") == "m.room.message" and e["content"].get("body", "").startswith(prefix)
    ]


async def test_restart_mid_stream_remote_to_matrix(make_bridge, bridge_env: BridgeEnv, uid):
    """Remote events queued before a stop are delivered after the restart, in order, once."""
    bridge = await make_bridge(**{"networks.fake.send_delay": 0})
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        expected = [f"r{i:02d}" for i in range(40)]
        for body in expected:
            await client.remote_message(chat, "bob", body)  # durable once this returns
        await eventually(lambda: len(bodies(alice, room_id, "r")) >= 5)
        await make_bridge.stop(bridge)
        delivered_before = len(bodies(alice, room_id, "r"))
        assert delivered_before < len(expected), "stopped too late to test anything"
        await make_bridge()
        await eventually(lambda: len(bodies(alice, room_id, "r")) >= len(expected), timeout=60)
        await asyncio.sleep(1)  # a duplicate would show up now
        assert bodies(alice, room_id, "r") == expected


async def test_homeserver_outage_delays_but_loses_nothing(bridge, bridge_env: BridgeEnv, uid):
    """Synapse down while remote messages arrive: all delivered after it is back, in order."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        bridge_env.synapse.stop()
        try:
            expected = [f"o{i:02d}" for i in range(15)]
            for body in expected:
                await client.remote_message(chat, "bob", body)
            await asyncio.sleep(2)  # the outbox is retrying against a dead homeserver
            assert bridge.outbox.pending == len(expected)
        finally:
            bridge_env.synapse.start()
        await eventually(lambda: len(bodies(alice, room_id, "o")) >= len(expected), timeout=90)
        await asyncio.sleep(1)
        assert bodies(alice, room_id, "o") == expected


async def test_a_failing_outbox_commit_is_retried_and_loses_nothing(bridge, bridge_env, uid):
    """The database refuses the first commits (locked, full): the lines queued meanwhile, with
    and without waiting for their commit, all reach the room, in order, once."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        store_many = bridge.store.outbox_add_many
        failures = [sqlite3.OperationalError("database is locked")] * 2

        async def flaky(items):
            if failures:
                raise failures.pop()
            return await store_many(items)

        bridge.store.outbox_add_many = flaky
        expected = [f"d{i:02d}" for i in range(12)]
        for body in expected[:8]:  # the IRC way: queued, not awaited
            bridge.queue_remote_event_soon(
                client.login.id,
                RemoteMessage(
                    PortalKey(chat), EventSender("bob"), id=body, content=MessageContent(body)
                ),
            )
        for body in expected[8:]:  # the awaited way: returns once stored
            await client.remote_message(chat, "bob", body)
        assert not failures, "the failures were never hit"
        await eventually(lambda: len(bodies(alice, room_id, "d")) >= len(expected), timeout=60)
        await asyncio.sleep(1)  # a duplicate would show up now
        assert bodies(alice, room_id, "d") == expected


async def test_restart_mid_stream_matrix_to_remote(
    make_bridge, bridge_env: BridgeEnv, uid, tmp_path
):
    """Matrix messages acknowledged before a stop all reach the network after the restart."""
    log_path = tmp_path / "sent.jsonl"
    overrides = {"networks.fake.sent_log": str(log_path), "networks.fake.send_delay": 0.05}
    bridge = await make_bridge(**overrides)
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        sent_ids = [await alice.send_text(room_id, f"m{i:02d}") for i in range(30)]
        await make_bridge.stop(bridge)
        bridge = await make_bridge(**overrides)
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])

        def received() -> list[str]:
            lines = log_path.read_text().splitlines() if log_path.exists() else []
            return [json.loads(x)["event_id"] for x in lines if json.loads(x)["kind"] == "message"]

        await eventually(lambda: len(received()) >= len(sent_ids), timeout=60)
        await asyncio.sleep(1)
        assert received() == sent_ids


def _write_config(bridge_env: BridgeEnv, path: Path, db_url: str, **overrides) -> None:
    path.write_text(yaml.safe_dump(bridge_env.config_dict(db_url, **overrides)))


async def _log_in_and_open_portal(alice, bridge_env: BridgeEnv, remote: str, chat: str) -> str:
    """Alice logs in to the fake network through the bot and joins the chat's alias."""
    bot = "@" + bridge_env.config_dict("")["appservice"]["bot"]["username"] + ":bridgekit.test"
    conv_room = await alice.create_room(invite=[bot], is_direct=True)

    async def answer(expected: str, reply: str | None) -> None:
        await alice.wait_for_event(
            conv_room, lambda e: expected in e.get("content", {}).get("body", ""), timeout=30
        )
        if reply is not None:
            await alice.send_text(conv_room, reply)

    await answer("management room", "login fake")
    await answer("username", remote)
    await answer("password", "pw")
    await answer("Logged in", None)
    return await alice.join(f"#_fake_{chat}:bridgekit.test")  # the portal, from its alias


async def test_kill_9_loses_no_acknowledged_matrix_message(
    bridge_env: BridgeEnv, uid, tmp_path, db_url
):
    """A bridge killed with SIGKILL mid-stream delivers every acked message after restart."""
    log_path = tmp_path / "sent.jsonl"
    cfg = tmp_path / "config.yaml"
    alice = await bridge_env.synapse.register_user(uid("alice"))
    chat = uid("chat")
    remote = uid("a")
    _write_config(
        bridge_env,
        cfg,
        db_url,
        **{
            "networks.fake.sent_log": str(log_path),
            "networks.fake.send_delay": 0.02,
            "networks.fake.chats": {chat: [remote, "bob"]},
            "logging.level": "WARNING",
        },
    )

    def received() -> list[str]:
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        return [json.loads(x)["event_id"] for x in lines if json.loads(x)["kind"] == "message"]

    bridge = BridgeProcess(cfg, tmp_path / "bridge.out")
    bridge.start()
    try:
        async with alice:
            room_id = await _log_in_and_open_portal(alice, bridge_env, remote, chat)
            sent_ids: list[str] = []
            for i in range(60):
                sent_ids.append(await alice.send_text(room_id, f"k{i:02d}"))
                if i == 30:
                    # Kill as soon as the network has seen a few: mid-stream, mid-send.
                    await eventually(lambda: len(received()) >= 5, timeout=30)
                    bridge.kill_9()
            before = len(received())
            assert before < len(sent_ids)
            await asyncio.sleep(0.5)
            bridge.start()
            await eventually(lambda: len(received()) >= len(sent_ids), timeout=90)
            await asyncio.sleep(1.5)
            got = received()
            assert sorted(set(got)) == sorted(sent_ids), "a message was lost"
            assert len(got) == len(sent_ids), "a message was delivered twice"
            assert got == sent_ids, "messages were reordered"
    finally:
        bridge.kill_9()


async def test_kill_9_loses_no_acknowledged_remote_message(
    bridge_env: BridgeEnv, uid, tmp_path, db_url
):
    """The other way: the network streams 80 messages, the bridge is killed with SIGKILL
    after acknowledging 30 (``queue_remote_event`` returned) while the rest are in flight,
    and the network sends what was not acknowledged again after the restart, as networks
    that redeliver do: all 80 reach the room once, in order."""
    cfg = tmp_path / "config.yaml"
    port = free_port()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    chat, remote = uid("chat"), uid("a")
    _write_config(
        bridge_env,
        cfg,
        db_url,
        **{
            "networks.fake.inbox_port": port,
            "networks.fake.chats": {chat: [remote, "bob"]},
            "logging.level": "WARNING",
        },
    )
    expected = [f"r{i:02d}" for i in range(80)]
    acked: list[str] = []

    async def stream(texts: list[str], kill_after: int | None = None) -> None:
        """Send ``texts`` at once (id = text) and collect the bridge's acks; with
        ``kill_after``, SIGKILL the bridge as soon as that many are acknowledged."""
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:  # the bridge is (re)starting
                await asyncio.sleep(0.2)
        else:
            raise AssertionError("the fake network's inbox never opened")
        for text in texts:
            line = {"chat": chat, "sender": "bob", "body": text, "id": text}
            writer.write(json.dumps(line).encode() + b"\n")
        await writer.drain()
        for text in texts:
            answer = await asyncio.wait_for(reader.readline(), 30)
            assert answer == f"ok {text}\n".encode(), answer
            acked.append(text)
            if len(acked) == kill_after:
                bridge.kill_9()
                break
        writer.close()

    async def in_room() -> list[str]:
        events = await alice.messages(room_id, limit=200)
        found = [e["content"].get("body", "") for e in events if e["type"] == "m.room.message"]
        return [b for b in found if b.startswith("r")]

    bridge = BridgeProcess(cfg, tmp_path / "bridge.out")
    bridge.start()
    try:
        async with alice:
            room_id = await _log_in_and_open_portal(alice, bridge_env, remote, chat)
            await stream(expected, kill_after=30)
            assert len(await in_room()) < len(acked), "killed too late to test anything"
            bridge.start()
            await stream(expected[len(acked) :])  # the unacknowledged ones, again

            async def all_there() -> bool:
                return len(await in_room()) >= len(expected)

            await eventually(all_there, timeout=90)
            await asyncio.sleep(1.5)  # a duplicate would show up now
            got = await in_room()
            assert sorted(set(got)) == expected, "a message was lost"
            assert len(got) == len(expected), "a message was delivered twice"
            assert got == expected, "messages were reordered"
    finally:
        bridge.kill_9()


async def test_portal_key_lookup_survives_restart(make_bridge, bridge_env: BridgeEnv, uid):
    bridge = await make_bridge()
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.mxid == room_id
        assert list(bridge.clients) == [client.login.id]
        # The reloaded login still bridges into the same room.
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        await bridge.clients[client.login.id].remote_message(chat, "bob", "after restart")
        await alice.wait_for_event(room_id, body_is("after restart"))


async def test_a_second_bridge_on_the_same_database_is_refused(make_bridge, bridge_env, uid):
    """Two processes on one database would replay and send everything twice: the second
    stops before it touches anything, and starts once the first has stopped."""
    first = await make_bridge()
    with pytest.raises(DatabaseInUse, match="another bridgekit process is running"):
        await make_bridge()
    await make_bridge.stop(first)
    second = await make_bridge()
    async with portal_scene(second, bridge_env, uid) as scene:
        await scene.until_transactions_flow()
