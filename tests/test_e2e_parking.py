"""A transaction or outbox row that keeps failing is parked, not replayed at every start.

What makes one keep failing here: its completion is never recorded (as when the work itself
brings the process down), simulated by keeping its "finished" mark or its outbox deletion
from the database. Everything else is real: Synapse, the replay at each start, the notices.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteMessage,
    remote_event_to_json,
)
from bridgekit.database.outbox import OutboxTable
from bridgekit.database.transactions import TransactionTable
from bridgekit.matrix.appservice import TxnKey
from bridgekit.metrics import StatusServer
from bridgekit.outbox.parking import REPLAY_ATTEMPTS
from bridgekit.outbox.transactions import parking_key
from bridgekit.testing.ports import free_port
from tests.conftest import BridgeEnv, eventually
from tests.helpers import body_is, fake, notice_says, portal_scene


@asynccontextmanager
async def status_of(bridge: Bridge) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """``/status`` (JSON) and ``/metrics`` (text) of a running bridge, over HTTP."""
    port = free_port()
    server = StatusServer(bridge.metrics, bridge.status, lambda: {})
    await server.start("127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/status") as resp:
                status = await resp.json()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                metrics = await resp.text()
        yield status, metrics
    finally:
        await server.stop()


def _copies(path: Path, event_id: str) -> int:
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(1 for x in lines if json.loads(x)["event_id"] == event_id)


async def test_a_transaction_that_never_finishes_is_parked_after_its_replays(
    make_bridge, bridge_env: BridgeEnv, uid, tmp_path, monkeypatch: pytest.MonkeyPatch
):
    stuck: set[TxnKey] = set()
    dispatch, finish = Bridge.dispatch_transaction, TransactionTable.finish_transactions

    def note_stuck(self, txn: TxnKey, data: dict[str, Any], replay: bool = False) -> None:
        if any(e.get("content", {}).get("body") == "stuck" for e in data.get("events", [])):
            stuck.add(txn)
        dispatch(self, txn, data, replay)

    async def never_finished(self, txns):
        await finish(self, [t for t in txns if t not in stuck])

    monkeypatch.setattr(Bridge, "dispatch_transaction", note_stuck)
    monkeypatch.setattr(TransactionTable, "finish_transactions", never_finished)
    log_path = tmp_path / "sent.jsonl"
    overrides = {"networks.fake.sent_log": str(log_path)}
    bridge = await make_bridge(**overrides)
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        event_id = await alice.send_text(room_id, "stuck")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        assert len(stuck) == 1

        for replay in range(1, REPLAY_ATTEMPTS + 1):
            await make_bridge.stop(bridge)
            bridge = await make_bridge(**overrides)
            fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
            # Replayed (its message is recognised as delivered: its mapping is stored).
            assert bridge.parking.attempts["transaction"] == {parking_key(t): replay for t in stuck}
            assert bridge.status()["parked"]["transaction"] == []

        await make_bridge.stop(bridge)
        bridge = await make_bridge(**overrides)
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        await alice.wait_for_event(room_id, notice_says("set aside"), timeout=20)
        probe = await alice.send_text(room_id, "probe")
        await eventually(lambda: _copies(log_path, probe) == 1, timeout=20)
        assert _copies(log_path, event_id) == 1
        async with status_of(bridge) as (status, metrics):
            assert status["parked"]["transaction"] == sorted(map(parking_key, stuck))
            assert 'bridgekit_parked{kind="transaction"} 1.0' in metrics
        # Kept: still stored, and not replayed at the next start either.
        assert [t for t, _ in await bridge.store.pending_transactions()] == sorted(stuck)
        await make_bridge.stop(bridge)
        bridge = await make_bridge(**overrides)
        assert bridge.status()["parked"]["transaction"] == sorted(map(parking_key, stuck))


async def test_an_outbox_row_that_never_finishes_is_parked_after_its_replays(
    make_bridge, bridge_env: BridgeEnv, uid, monkeypatch: pytest.MonkeyPatch
):
    stuck: set[int] = set()
    submit, done_later = Bridge._submit_outbox, OutboxTable.outbox_done_later

    def note_stuck(self, item, event=None) -> None:
        if "stuck line" in item.payload:
            stuck.add(item.seq)
        submit(self, item, event)

    def never_done(self, seqs) -> None:
        done_later(self, [s for s in seqs if s not in stuck])

    monkeypatch.setattr(Bridge, "_submit_outbox", note_stuck)
    monkeypatch.setattr(OutboxTable, "outbox_done_later", never_done)
    bridge = await make_bridge()
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        await client.remote_message(chat, "bob", "stuck line")
        await alice.wait_for_event(room_id, body_is("stuck line"))
        assert len(stuck) == 1
        (seq,) = stuck

        for replay in range(1, REPLAY_ATTEMPTS + 1):
            await make_bridge.stop(bridge)
            bridge = await make_bridge()
            await eventually(lambda b=bridge: b.outbox.pending == 0, timeout=20)
            assert bridge.parking.attempts["outbox"] == {str(seq): replay}
            assert bridge.status()["parked"]["outbox"] == []

        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        await alice.wait_for_event(room_id, notice_says("set aside"), timeout=20)
        async with status_of(bridge) as (status, metrics):
            assert status["parked"]["outbox"] == [str(seq)]
            assert 'bridgekit_parked{kind="outbox"} 1.0' in metrics
        assert seq in [i.seq for i in await bridge.store.outbox_pending()]  # kept


@pytest.mark.parametrize(
    "payload",
    ['{"kind": "merged-lines", "lines": ["{broken"]}', '{"kind": "gone-kind"}', "not json"],
    ids=["merged", "unknown-kind", "not-json"],
)
async def test_an_outbox_row_that_no_longer_decodes_is_parked_at_once(
    make_bridge, bridge_env: BridgeEnv, uid, payload: str
):
    """Written by another version, or damaged: the start goes on (a merged row that did not
    decode stopped it), the lines around it arrive, and it is set aside, not dropped."""
    bridge = await make_bridge()
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        good = RemoteMessage(
            PortalKey(chat), EventSender("bob"), id=uid("after"), content=MessageContent("after")
        )
        bad_seq, _ = await bridge.store.outbox_add_many(
            [
                ("fake", PortalKey(chat), client.login.id, payload),
                ("fake", PortalKey(chat), client.login.id, remote_event_to_json(good)),
            ]
        )
        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        await alice.wait_for_event(room_id, body_is("after"), timeout=20)
        await alice.wait_for_event(room_id, notice_says("set aside"), timeout=20)
        assert bridge.status()["parked"]["outbox"] == [str(bad_seq)]
        assert bad_seq in [i.seq for i in await bridge.store.outbox_pending()]  # kept
