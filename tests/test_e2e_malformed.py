"""Malformed events from a real client (Synapse accepts them) must not poison anything.

A permitted user's client can put a list or an integer where the spec wants a string (in
``m.relates_to``, say). Such an event is refused where its fields are read, and whatever it
shares a transaction or a group commit with is still handled and recorded exactly once.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridgekit.contract.events import PortalKey
from bridgekit.testing.matrix_client import MatrixError
from tests.conftest import BridgeEnv, eventually
from tests.helpers import fake, notice_says, open_portal, portal_scene


def _sent(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(x) for x in lines]


async def _one_transaction(bridge, send) -> None:
    """Run ``send()`` while the homeserver waits for the bridge to take a transaction, so that
    what it sends reaches the bridge together, in the next transaction."""
    gate = asyncio.Event()
    held = asyncio.Event()
    original = bridge.wait_for_capacity

    async def hold() -> None:
        if not gate.is_set():
            held.set()
            await gate.wait()
        await original()

    bridge.wait_for_capacity = hold
    try:
        return await send(held, gate)
    finally:
        gate.set()
        bridge.wait_for_capacity = original


@pytest.mark.parametrize("bad", [["$a", "$b"], 12345], ids=["list", "integer"])
async def test_a_malformed_relation_does_not_poison_its_transaction(
    make_bridge, bridge_env: BridgeEnv, uid, tmp_path, bad
):
    """One malformed event and one good event for another room in one transaction: the
    good one is sent once and mapped, the transaction is finished, and a restart re-sends
    nothing (before: the malformed row failed the whole group commit, so both were sent
    again at every start)."""
    log_path = tmp_path / "sent.jsonl"
    overrides = {"networks.fake.sent_log": str(log_path)}
    bridge = await make_bridge(**overrides)
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat_a, room_a, net = scene
        chat_b = uid("chat")
        net.add_chat(chat_b, members=[client.login.remote_id, "bob"])
        room_b = await open_portal(bridge, alice, client, chat_b)

        async def send(held: asyncio.Event, gate: asyncio.Event) -> tuple[str, str]:
            await alice.send_text(room_b, "blocker")  # the transaction the bridge holds
            await asyncio.wait_for(held.wait(), 15)
            bad_id = await alice.send_message(
                room_a,
                {
                    "msgtype": "m.text",
                    "body": "bad thread",
                    "m.relates_to": {"rel_type": "m.thread", "event_id": bad},
                },
            )
            good_id = await alice.send_text(room_b, "good one")
            await asyncio.sleep(0.5)  # both queued behind the held transaction
            gate.set()
            return bad_id, good_id

        bad_id, good_id = await _one_transaction(bridge, send)
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == good_id)
        await alice.wait_for_event(room_a, notice_says("not bridged"))
        await eventually(lambda: bridge.store.message_by_event(good_id), timeout=10)

        async def finished() -> bool:  # the room's job ends just after its notice is sent
            return await bridge.store.pending_transactions() == []

        await eventually(finished, timeout=10)
        assert bad_id not in [s["event_id"] for s in _sent(log_path)]

        await make_bridge.stop(bridge)
        bridge = await make_bridge(**overrides)
        fake(bridge).network.add_chat(chat_a, members=[client.login.remote_id, "bob"])
        fake(bridge).network.add_chat(chat_b, members=[client.login.remote_id, "bob"])
        probe = await alice.send_text(room_b, "after restart")
        await eventually(lambda: probe in [s["event_id"] for s in _sent(log_path)], timeout=30)
        await asyncio.sleep(1)  # a replay would show up by now
        ids = [s["event_id"] for s in _sent(log_path) if s["kind"] == "message"]
        assert ids.count(good_id) == 1, ids
        assert bad_id not in ids
        assert await bridge.store.message_by_event(good_id) is not None  # durable mapping


async def test_relations_to_another_rooms_event_stay_out_of_this_rooms_chat(
    bridge, bridge_env: BridgeEnv, uid
):
    """A reply, an edit, a reaction and a redaction sent in room A that name one's own
    event of room B reach neither chat (before: they went out in A's chat with B's remote
    id, and the redaction removed B's message there and its mapping).

    Synapse lets a reply through; edits, reactions and redactions of another room's event it
    refuses to its own users, but not in events that come over federation (it checks them
    only when a local client sends them): those reach the bridge here as the homeserver
    would deliver them, in a transaction."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat_a, room_a, net = scene
        chat_b = uid("chat")
        net.add_chat(chat_b, members=[client.login.remote_id, "bob"])
        room_b = await open_portal(bridge, alice, client, chat_b)
        in_b = await alice.send_text(room_b, "said in B")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == in_b)
        key_b = PortalKey(chat_b)
        await eventually(lambda: bridge.store.message_in_portal("fake", key_b, in_b))
        sent_before = len(net.sent)

        reply = await alice.send_message(
            room_a,
            {
                "msgtype": "m.text",
                "body": "a reply",
                "m.relates_to": {"m.in_reply_to": {"event_id": in_b}},
            },
        )
        edit = {
            "msgtype": "m.text",
            "body": "* edited",
            "m.new_content": {"msgtype": "m.text", "body": "edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": in_b},
        }
        with pytest.raises(MatrixError, match="same room"):
            await alice.send_message(room_a, edit)
        events = [
            ("m.room.message", edit, {}),
            (
                "m.reaction",
                {"m.relates_to": {"rel_type": "m.annotation", "event_id": in_b, "key": "+"}},
                {},
            ),
            ("m.room.redaction", {"redacts": in_b}, {"redacts": in_b}),
        ]
        txn = {
            "events": [
                {
                    "type": etype,
                    "room_id": room_a,
                    "sender": alice.user_id,
                    "event_id": f"${uid('fed')}",
                    "origin_server_ts": int(time.time() * 1000),
                    "content": content,
                    **top,
                }
                for etype, content, top in events
            ]
        }
        path = f"http://127.0.0.1:{bridge_env.as_port}/_matrix/app/v1/transactions/{uid('t')}"
        headers = {"Authorization": f"Bearer {bridge_env.hs_token}"}
        async with aiohttp.ClientSession() as http, http.put(path, json=txn, headers=headers) as r:
            assert r.status == 200
        probe = await alice.send_text(room_a, "probe")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == probe)

        after = net.sent[sent_before:]
        assert [(i.kind, i.chat_id) for i in after] == [("message", chat_a), ("message", chat_a)]
        replied = next(i for i in after if i.data.event_id == reply)
        assert replied.data.content.reply_to is None
        assert await bridge.store.message_in_portal("fake", key_b, in_b) is not None


async def test_malformed_events_in_a_loop_get_one_notice(bridge, bridge_env: BridgeEnv, uid):
    """A client sending junk over and over does not make the bot post once per event."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, _chat, room_id, net = scene
        for i in range(5):
            await alice.send_message(
                room_id,
                {"msgtype": "m.text", "body": f"bad {i}", "m.relates_to": [i]},
            )
        good_id = await alice.send_text(room_id, "good after the junk")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == good_id)

        def notices() -> int:
            return sum(
                "not bridged" in str(e.get("content", {}).get("body"))
                for e in alice.history(room_id)
            )

        await eventually(lambda: notices() >= 1)
        await alice.send_text(room_id, "!version")  # a reply: what came before it is synced
        await alice.wait_for_event(room_id, notice_says("bridgekit"))
        assert notices() == 1
