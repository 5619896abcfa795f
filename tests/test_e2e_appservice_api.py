"""The appservice HTTP API of a running bridge: authentication, bad input, idempotency."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time

import aiohttp

from bridgekit.bridge import Bridge
from bridgekit.process_tuning import GC_YOUNG_THRESHOLD
from tests.conftest import BridgeEnv, eventually
from tests.helpers import fake, login, open_portal


def url(env: BridgeEnv, path: str) -> str:
    return f"http://127.0.0.1:{env.as_port}{path}"


def auth(env: BridgeEnv) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.hs_token}"}


async def test_requests_are_authenticated(bridge: Bridge, bridge_env: BridgeEnv, caplog):
    caplog.set_level(logging.INFO, logger="bridgekit")
    path = url(bridge_env, "/_matrix/app/v1/transactions/t-auth")
    async with aiohttp.ClientSession() as http:
        async with http.put(path, json={"events": []}) as resp:
            assert resp.status == 401
            assert (await resp.json())["errcode"] == "M_UNAUTHORIZED"
        async with http.put(
            path, json={"events": []}, headers={"Authorization": "Bearer nope"}
        ) as resp:
            assert resp.status == 403
            assert (await resp.json())["errcode"] == "M_FORBIDDEN"
        async with http.put(path, json={"events": []}, params={"access_token": "nope"}) as resp:
            assert resp.status == 403
        async with http.put(
            path, json={"events": []}, params={"access_token": bridge_env.hs_token}
        ) as resp:
            assert resp.status == 200  # the legacy query parameter, when it matches
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/users/@_fake_x:bridgekit.test")
        ) as resp:
            assert resp.status == 401
    # The refusals are logged, without the token, at most once a minute.
    refused = [r.getMessage() for r in caplog.records if "Refused" in r.getMessage()]
    assert len(refused) == 1, refused
    assert "no hs_token" in refused[0] and "PUT /_matrix/app/v1/transactions/t-auth" in refused[0]
    assert "registration file" in refused[0]
    assert "nope" not in caplog.text and bridge_env.hs_token not in caplog.text


async def test_bad_requests_get_matrix_errors(bridge: Bridge, bridge_env: BridgeEnv):
    path = url(bridge_env, "/_matrix/app/v1/transactions/t-bad")
    async with aiohttp.ClientSession() as http:
        async with http.put(path, data=b"{not json", headers=auth(bridge_env)) as resp:
            assert resp.status == 400 and (await resp.json())["errcode"] == "M_NOT_JSON"
        async with http.put(path, data=b"\xff\xfe", headers=auth(bridge_env)) as resp:
            assert resp.status == 400 and (await resp.json())["errcode"] == "M_NOT_JSON"
        async with http.put(path, json=[1, 2], headers=auth(bridge_env)) as resp:
            assert resp.status == 400 and (await resp.json())["errcode"] == "M_BAD_JSON"
        async with http.put(path, json={"events": "x"}, headers=auth(bridge_env)) as resp:
            assert resp.status == 400 and (await resp.json())["errcode"] == "M_BAD_JSON"
        huge = b'{"events": [], "pad": "' + b"x" * (11 * 1024 * 1024) + b'"}'
        async with http.put(path, data=huge, headers=auth(bridge_env)) as resp:
            assert resp.status == 413
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/nonsense"), headers=auth(bridge_env)
        ) as resp:
            assert resp.status == 404 and (await resp.json())["errcode"] == "M_UNRECOGNIZED"
        async with http.get(path, headers=auth(bridge_env)) as resp:
            assert resp.status == 405 and (await resp.json())["errcode"] == "M_UNRECOGNIZED"
        # Events that are not objects or lack fields are ignored, never a crash.
        junk = {
            "events": [1, "x", None, {"type": 5}, {"type": "m.room.message", "room_id": "!r:x"}]
        }
        async with http.put(
            url(bridge_env, "/_matrix/app/v1/transactions/t-junk"),
            json=junk,
            headers=auth(bridge_env),
        ) as resp:
            assert resp.status == 200
        async with http.post(
            url(bridge_env, "/_matrix/app/v1/ping"), json={}, headers=auth(bridge_env)
        ) as resp:
            assert resp.status == 200 and await resp.json() == {}


async def test_user_and_alias_queries(bridge: Bridge, bridge_env: BridgeEnv):
    async with aiohttp.ClientSession() as http:
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/users/@_fake_someone:bridgekit.test"),
            headers=auth(bridge_env),
        ) as resp:
            assert resp.status == 200
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/users/@alice:bridgekit.test"), headers=auth(bridge_env)
        ) as resp:
            assert resp.status == 404
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/rooms/%23_fake_nochat:bridgekit.test"),
            headers=auth(bridge_env),
        ) as resp:
            assert resp.status == 404
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/thirdparty/protocol/fake"), headers=auth(bridge_env)
        ) as resp:
            assert resp.status == 200 and "location_fields" in await resp.json()
        async with http.get(
            url(bridge_env, "/_matrix/app/v1/thirdparty/protocol/nope"), headers=auth(bridge_env)
        ) as resp:
            assert resp.status == 404


async def test_duplicate_transactions_are_processed_once(make_bridge, bridge_env: BridgeEnv, uid):
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id])
        room_id = await open_portal(bridge, alice, client, chat)
        event = {
            "type": "m.room.message",
            "room_id": room_id,
            "sender": alice.user_id,
            "event_id": f"$dup{uid('e')}",
            "origin_server_ts": int(time.time() * 1000),
            "content": {"msgtype": "m.text", "body": "only once"},
        }
        txn = {"events": [event]}
        path = url(bridge_env, f"/_matrix/app/v1/transactions/{uid('txn')}")

        async def put(p: str) -> None:
            async with aiohttp.ClientSession() as http:
                async with http.put(p, data=json.dumps(txn), headers=auth(bridge_env)) as resp:
                    assert resp.status == 200

        def copies(b: Bridge) -> int:
            return sum(
                1
                for i in fake(b).network.sent
                if i.kind == "message" and i.data.event_id == event["event_id"]
            )

        await put(path)
        await put(path)
        # The same event again in another transaction (Synapse does not do this, but it must
        # not matter) is recognised too.
        await put(url(bridge_env, f"/_matrix/app/v1/transactions/{uid('other')}"))
        await eventually(lambda: copies(bridge) == 1)
        await asyncio.sleep(0.5)
        assert copies(bridge) == 1
        # After a restart the txn id is still remembered: a late retry is not processed.
        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id])
        await put(path)
        await asyncio.sleep(1)
        assert copies(bridge) == 0


async def test_a_txn_id_reused_with_new_events_is_processed(
    make_bridge, bridge_env: BridgeEnv, uid, caplog
):
    """A homeserver that restarted numbers its transactions again (Synapse on SQLite): an id
    seen before with other events is new work, a retry (same events) is not, before and after
    a bridge restart; the reuse is a warning, once."""
    caplog.set_level(logging.INFO, logger="bridgekit")
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id])
        room_id = await open_portal(bridge, alice, client, chat)

        def event(body: str, room: str = room_id) -> dict:
            return {
                "type": "m.room.message",
                "room_id": room,
                "sender": alice.user_id,
                "event_id": f"${body}{uid('e')}",
                "origin_server_ts": int(time.time() * 1000),
                "content": {"msgtype": "m.text", "body": body},
            }

        async def put(txn_id: str, *events: dict) -> None:
            async with aiohttp.ClientSession() as http:
                async with http.put(
                    url(bridge_env, f"/_matrix/app/v1/transactions/{txn_id}"),
                    data=json.dumps({"events": list(events)}),
                    headers=auth(bridge_env),
                ) as resp:
                    assert resp.status == 200

        def sent(b: Bridge) -> list[str]:
            return [i.data.event_id for i in fake(b).network.sent if i.kind == "message"]

        txn, idless = uid("1"), uid("2")
        a, b, c, d = event("a"), event("b"), event("c"), event("d")
        await put(txn, a)
        await put(txn, a)  # a retry
        await put(txn, b)  # the id again, new events
        await put(txn, c, a)  # and again
        # Only events the bridge ignores (a room that is no portal): remembered in memory.
        await put(idless, event("elsewhere", "!nowhere:bridgekit.test"))
        await put(idless, d)
        await eventually(lambda: len(sent(bridge)) >= 4)
        await asyncio.sleep(0.5)
        # a, again in a new transaction, is recognised as bridged (its mapping).
        assert sent(bridge) == [e["event_id"] for e in (a, b, c, d)]
        warnings = [r for r in caplog.records if "reused transaction id" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING

        # Only ephemeral events: never a retry (a homeserver does not resend those).
        ephemeral = uid("3")
        for users in ([alice.user_id], []):
            typing = {"type": "m.typing", "room_id": room_id, "content": {"user_ids": users}}
            async with aiohttp.ClientSession() as http:
                async with http.put(
                    url(bridge_env, f"/_matrix/app/v1/transactions/{ephemeral}"),
                    json={"events": [], "de.sorunome.msc2409.ephemeral": [typing]},
                    headers=auth(bridge_env),
                ) as resp:
                    assert resp.status == 200

        def typing_seen() -> list[bool]:
            return [i.data.typing for i in fake(bridge).network.sent if i.kind == "typing"]

        await eventually(lambda: typing_seen() == [True, False])

        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id])
        e = event("e")
        caplog.set_level(logging.DEBUG, logger="bridgekit.matrix.appservice")
        caplog.clear()
        await put(txn, c, a)  # a late retry, after the bridge restarted
        assert f"Transaction {txn} already received" in caplog.text
        await put(txn, e)
        await eventually(lambda: sent(bridge) == [e["event_id"]])
        await asyncio.sleep(0.5)
        assert sent(bridge) == [e["event_id"]]


def _deep(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


async def test_junk_events_are_each_logged_once_briefly(
    bridge: Bridge, bridge_env: BridgeEnv, uid, caplog
):
    """Events nested deep, or with fields of the wrong type, in a portal: the transaction is
    acknowledged, the good event in it bridged, and each bad one logged once, in one line."""
    caplog.set_level(logging.DEBUG)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id])
        room_id = await open_portal(bridge, alice, client, chat)

        def event(n: int, content: object, **extra: object) -> dict:
            return {
                "type": "m.room.message",
                "room_id": room_id,
                "sender": alice.user_id,
                "event_id": f"$junk{n}{uid('e')}",
                "origin_server_ts": int(time.time() * 1000),
                "content": content,
                **extra,
            }

        junk = [
            event(1, {"msgtype": "m.text", "body": _deep(900)}),
            event(2, {"msgtype": "m.text", "body": "deep", "m.relates_to": _deep(900)}),
            event(3, {"msgtype": "m.text", "body": "x", "m.relates_to": {"rel_type": 5}}),
            event(4, {"msgtype": 7, "body": ["x"]}),
            event(5, ["not", "an", "object"]),
            event(
                6,
                {
                    "msgtype": "m.text",
                    "body": "x",
                    "format": "org.matrix.custom.html",
                    "formatted_body": {"a": 1},
                },
            ),
            event(7, {"msgtype": "m.image", "body": "x", "url": 5, "info": "nope"}),
            event(9, {"msgtype": "m.text", "body": "x", "m.relates_to": ["a list"]}),
            event(10, {"msgtype": "m.text", "body": "x", "m.relates_to": [_deep(900)]}),
            {**event(11, {"msgtype": "m.text", "body": "x"}), "event_id": _deep(900)},
        ]
        good = event(8, {"msgtype": "m.text", "body": "after the junk"})
        caplog.clear()
        async with aiohttp.ClientSession() as http:
            async with http.put(
                url(bridge_env, f"/_matrix/app/v1/transactions/{uid('junk')}"),
                data=json.dumps({"events": [*junk, good]}),
                headers=auth(bridge_env),
            ) as resp:
                assert resp.status == 200
        net = fake(bridge).network
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == good["event_id"])
        await asyncio.sleep(0.5)
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(loud) <= len(junk), [r.getMessage() for r in loud]
        assert all(len(r.getMessage()) < 500 for r in loud), "one line each"
        # Events 2, 9 and 10 fail the same way at the same place: one traceback for the three.
        same = [r for r in loud if any(f"$junk{n}e" in r.getMessage() for n in (2, 9, 10))]
        assert sum(1 for r in same if r.exc_info) <= 1
        assert sum(1 for r in loud if r.exc_info) <= 2


async def test_a_database_outage_logs_one_traceback_while_synapse_retries(
    bridge: Bridge, bridge_env: BridgeEnv, uid, caplog
):
    """Each transaction Synapse retries is a 500 while the database is down: one traceback,
    not one per retry; and the message arrives once the database is back."""
    caplog.set_level(logging.INFO, logger="bridgekit")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        calls: list[object] = []

        async def database_down(txn, body):
            calls.append(txn)
            raise ConnectionError("database is down")

        bridge.store_transaction = database_down  # type: ignore[method-assign]
        try:
            event_id = await alice.send_text(room_id, "during the outage")
            await eventually(lambda: len(calls) >= 3, timeout=40)
        finally:
            del bridge.store_transaction  # the class's own again
        # Synapse's next retry comes after its backoff (2, 4, 8, 16 s...): a slow machine may
        # be one step further along when the database comes back.
        await net.wait_for(
            lambda i: i.kind == "message" and i.data.event_id == event_id, timeout=60
        )
        tracebacks = [
            r for r in caplog.records if r.exc_info and "database is down" in str(r.exc_info[1])
        ]
        assert len(tracebacks) == 1


async def test_the_collectors_young_passes_are_rarer_while_a_bridge_runs(make_bridge):
    """A transaction's parsed events die before a young-generation pass instead of being
    walked and promoted by several (bench/README.md, ingest); Python's value comes back at
    stop, so a process that ran a bridge is not left changed."""
    before = gc.get_threshold()
    bridge = await make_bridge()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
    await make_bridge.stop(bridge)
    assert gc.get_threshold() == before
