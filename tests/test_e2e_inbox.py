"""SQLite: the homeserver's transactions in a file of their own beside the database
(bridgekit/database/inbox.py), their "finished" marks in the main database; a kill -9 between
the ack and the handling, and the upgrade from a database that held the transactions itself."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from bridgekit.bridge import Bridge
from tests.conftest import DB_ENGINE, BridgeEnv, eventually
from tests.helpers import BridgeProcess, fake, portal_scene
from tests.test_e2e_reliability import _log_in_and_open_portal, _write_config

pytestmark = pytest.mark.skipif(DB_ENGINE != "sqlite", reason="the inbox file is SQLite's")


def files(tmp_path: Path) -> tuple[Path, Path]:
    """The main database (conftest's db_url) and the inbox file beside it."""
    return tmp_path / "bridgekit.db", tmp_path / "bridgekit.inbox.db"


def query(path: Path, sql: str, *args: object) -> list[tuple]:
    """Read a database file as another process would (what is committed, nothing else)."""
    with sqlite3.connect(path) as c:
        return c.execute(sql, args).fetchall()


def remove_inbox(inbox: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{inbox}{suffix}").unlink(missing_ok=True)


def message(room_id: str, sender: str, event_id: str, body: str) -> dict:
    return {
        "type": "m.room.message",
        "room_id": room_id,
        "sender": sender,
        "event_id": event_id,
        "origin_server_ts": int(time.time() * 1000),
        "content": {"msgtype": "m.text", "body": body},
    }


def sent(bridge: Bridge, event_id: str) -> int:
    return sum(
        1 for i in fake(bridge).network.sent if i.kind == "message" and i.data.event_id == event_id
    )


async def test_a_transaction_is_in_the_inbox_file_before_its_ack_and_marked_in_the_database(
    make_bridge, bridge_env: BridgeEnv, uid, tmp_path, monkeypatch
):
    bridge = await make_bridge(**{"networks.fake.send_delay": 3})
    settle = bridge.store.settle_transactions
    monkeypatch.setattr(bridge.store, "settle_transactions", lambda: asyncio.sleep(0))
    main, inbox = files(tmp_path)
    async with portal_scene(bridge, bridge_env, uid) as scene:
        event_id = f"$inbox{uid('e')}"
        txn_id = uid("txn")
        body = {"events": [message(scene.room_id, scene.alice.user_id, event_id, "hi")]}
        async with aiohttp.ClientSession() as http:
            async with http.put(
                f"http://127.0.0.1:{bridge_env.as_port}/_matrix/app/v1/transactions/{txn_id}",
                data=json.dumps(body),
                headers={"Authorization": f"Bearer {bridge_env.hs_token}"},
            ) as resp:
                assert resp.status == 200
        # Acknowledged, not handled yet (the network takes 3 s): durable in the inbox file.
        stored = query(inbox, "SELECT body FROM appservice_txn WHERE txn_id=?", txn_id)
        assert len(stored) == 1 and event_id in stored[0][0]
        assert query(main, "SELECT count(*) FROM appservice_txn") == [(0,)]
        assert sent(bridge, event_id) == 0
        # Handled: the "finished" mark is in the main database, committed with the mapping.
        await eventually(lambda: sent(bridge, event_id) == 1, timeout=30)

        def marked() -> bool:
            return bool(query(main, "SELECT 1 FROM appservice_txn_done WHERE txn_id=?", txn_id))

        await eventually(marked, timeout=15)
        assert query(main, "SELECT count(*) FROM message WHERE event_id=?", event_id) == [(1,)]
        assert await bridge.store.pending_transactions() == []
        # Settled: the body is cleared in the inbox and the mark forgotten.
        assert await settle() >= 1
        assert query(inbox, "SELECT body FROM appservice_txn WHERE txn_id=?", txn_id) == [(None,)]
        assert not marked()


async def test_kill_9_between_the_ack_and_the_handling_replays_the_transaction(
    bridge_env: BridgeEnv, uid, tmp_path, db_url
):
    log_path = tmp_path / "sent.jsonl"
    cfg = tmp_path / "config.yaml"
    main, inbox = files(tmp_path)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    chat, remote = uid("chat"), uid("a")
    settings = {
        "networks.fake.sent_log": str(log_path),
        "networks.fake.chats": {chat: [remote, "bob"]},
        "logging.level": "WARNING",
    }
    _write_config(bridge_env, cfg, db_url, **settings, **{"networks.fake.send_delay": 30})

    def received() -> list[str]:
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        return [json.loads(x)["event_id"] for x in lines if json.loads(x)["kind"] == "message"]

    def in_inbox(event_id: str) -> bool:
        rows = query(inbox, "SELECT body FROM appservice_txn WHERE body IS NOT NULL")
        return any(event_id in body for (body,) in rows)

    bridge = BridgeProcess(cfg, tmp_path / "bridge.out")
    bridge.start()
    try:
        async with alice:
            room_id = await _log_in_and_open_portal(alice, bridge_env, remote, chat)
            event_id = await alice.send_text(room_id, "acked, then killed")
            await eventually(lambda: in_inbox(event_id), timeout=30)  # stored, so acked
            bridge.kill_9()  # before the (slow) network had it
            assert received() == []
            _write_config(bridge_env, cfg, db_url, **settings)
            bridge.start()
            await eventually(lambda: received() == [event_id], timeout=60)
            await asyncio.sleep(1.5)  # a duplicate would show up now
            assert received() == [event_id]
            assert main.exists() and inbox.exists()
    finally:
        bridge.kill_9()


async def test_a_pending_transaction_from_before_the_inbox_file_is_replayed_after_the_upgrade(
    make_bridge, bridge_env: BridgeEnv, uid, tmp_path
):
    """A database from before the inbox file (schema v7, transactions in the main file, one
    acknowledged but not handled): it moves into the inbox file and is handled once."""
    bridge = await make_bridge()
    main, inbox = files(tmp_path)
    async with portal_scene(bridge, bridge_env, uid) as scene:
        await make_bridge.stop(bridge)
        remove_inbox(inbox)  # back to the old layout
        event_id = f"$old{uid('e')}"
        body = {"events": [message(scene.room_id, scene.alice.user_id, event_id, "old")]}
        with sqlite3.connect(main) as c:
            c.execute("DROP TABLE appservice_txn_done")
            c.execute("UPDATE bridgekit_version SET version = 7")
            c.execute(
                "INSERT INTO appservice_txn (txn_id, digest, body, received_at) "
                "VALUES (?, 'd', ?, ?)",
                (uid("old"), json.dumps(body), int(time.time() * 1000)),
            )
        members = [scene.client.login.remote_id, "bob"]
        bridge = await make_bridge(**{"networks.fake.chats": {scene.chat: members}})
        assert inbox.exists()
        assert query(main, "SELECT count(*) FROM appservice_txn") == [(0,)]
        await eventually(lambda: sent(bridge, event_id) == 1, timeout=30)
        await asyncio.sleep(0.5)
        assert sent(bridge, event_id) == 1

        async def finished() -> bool:
            return await bridge.store.pending_transactions() == []

        await eventually(finished, timeout=15)
        # Restarted again: not replayed twice.
        await make_bridge.stop(bridge)
        bridge = await make_bridge(**{"networks.fake.chats": {scene.chat: members}})
        await asyncio.sleep(1)
        assert sent(bridge, event_id) == 0
