"""End-to-bridge encryption end to end: a real Synapse, the runtime with the fake network, and
the Matrix user's side a real E2EE client (matrix-nio on vodozemac)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.cli import QUIET_AT_DEBUG
from bridgekit.config import Config
from bridgekit.crypto.backend import DeviceMismatch
from bridgekit.testing.e2ee_client import E2EEUser, user_store
from tests.conftest import PICKLE_KEY, BridgeEnv, BridgeFactory, eventually
from tests.helpers import DOMAIN, fake, ghost, login

ENCRYPTION = {
    "encryption.allow": True,
    "encryption.default": True,
    "encryption.pickle_key": PICKLE_KEY,
}


@pytest.fixture
async def e2ee_bridge(make_bridge: BridgeFactory) -> Bridge:
    return await make_bridge(**ENCRYPTION)


async def e2ee_user(env: BridgeEnv, tmp_path: Path, uid: Any) -> tuple[E2EEUser, Any]:
    """A registered user (its plain test client, to sniff raw events) and an E2EE device."""
    plain = await env.synapse.register_user(uid("alice"))
    return E2EEUser(env.synapse.base_url, plain.user_id, user_store(tmp_path, plain.user_id)), plain


async def raw_events(plain: Any, room_id: str) -> list[dict[str, Any]]:
    """The room's events as the homeserver stores them (not decrypted)."""
    return await plain.messages(room_id, limit=100)


async def open_encrypted_portal(
    bridge: Bridge, alice: E2EEUser, plain: Any, uid: Any, text: str
) -> tuple[Any, str, str]:
    client = await login(bridge, plain, uid("a"))
    chat = uid("chat")
    fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
    await client.remote_message(chat, "bob", text)
    room_id = await alice.wait_for_invite()
    await alice.join(room_id)
    return client, chat, room_id


async def test_encrypted_portal_both_ways(
    e2ee_bridge: Bridge, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    bridge = e2ee_bridge
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(
            bridge, alice, plain, uid, "hello, encrypted"
        )
        # remote -> Matrix: the ghost's message, encrypted by the bot's device, decrypted by
        # the user's client.
        try:
            msg = await alice.wait_for_message(room_id, "hello, encrypted")
        except AssertionError:
            print(
                "DEBUG",
                alice.messages,
                alice.undecrypted,
                alice.client.olm.account.identity_keys if alice.client.olm else None,
            )
            raise
        assert msg["sender"] == ghost("bob") and msg["decrypted"] is True
        # Matrix -> remote: the user's client encrypts, the bridge decrypts.
        event_id = await alice.send_text(room_id, "secret from alice")
        net = fake(bridge).network
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        assert sent.data.content.body == "secret from alice" and sent.chat_id == chat
        await client.remote_message(chat, "bob", "second from bob")
        await alice.wait_for_message(room_id, "second from bob")
        # Nothing the bridge sent went out in plaintext: the homeserver stores ciphertext.
        raw = await raw_events(plain, room_id)
        ours = [e for e in raw if e["sender"] in (bridge.bot_mxid, ghost("bob"))]
        sent_types = {e["type"] for e in ours if "state_key" not in e}
        assert sent_types == {"m.room.encrypted"}
        assert not any("second from bob" in str(e["content"]) for e in raw)
        # The start-up check: this homeserver pushes to-device messages in transactions.
        assert bridge.encryption is not None
        await asyncio.wait_for(bridge.encryption.push_works.wait(), 90)


async def as_request(env: BridgeEnv, method: str, path: str, body: Any = None) -> Any:
    """A client-server request as the appservice, acting as the bridge bot."""
    import aiohttp

    url = f"{env.synapse.base_url}/_matrix/client/v3{path}"
    params = {"user_id": f"@bridgekitbot:{DOMAIN}"}
    headers = {"Authorization": f"Bearer {env.as_token}"}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, params=params, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


async def start_fails(bridge_env: BridgeEnv, db_url: str) -> Exception:
    config = Config.from_dict(bridge_env.config_dict(db_url, **ENCRYPTION))
    bridge = Bridge(config)
    try:
        await bridge.start()
    except Exception as e:
        return e
    finally:
        with contextlib.suppress(Exception):
            await bridge.stop()
    raise AssertionError("the bridge started")


async def test_a_crypto_database_the_homeserver_does_not_know_is_refused(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, db_url: str
) -> None:
    """A database whose device the homeserver no longer has (a new homeserver, or the device
    deleted) stops the start with a clear error instead of running with a keyless device."""
    bridge = await make_bridge(**ENCRYPTION)
    assert bridge.encryption is not None
    device = bridge.encryption.backend.device_id
    status, keys = await as_request(
        bridge_env, "POST", "/keys/query", {"device_keys": {bridge.bot_mxid: [device]}}
    )
    assert status == 200 and device in keys["device_keys"][bridge.bot_mxid]
    await make_bridge.stop(bridge)  # type: ignore[attr-defined]

    # The homeserver loses the device (and its keys).
    status, _ = await as_request(bridge_env, "DELETE", f"/devices/{device}", {})
    assert status == 200
    error = await start_fails(bridge_env, db_url)
    assert isinstance(error, DeviceMismatch)
    assert device in str(error) and "no such device" in str(error)


async def test_a_device_whose_keys_the_homeserver_lost_is_refused(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, db_url: str
) -> None:
    bridge = await make_bridge(**ENCRYPTION)
    assert bridge.encryption is not None
    device = bridge.encryption.backend.device_id
    await make_bridge.stop(bridge)  # type: ignore[attr-defined]
    # The device is back, but without the keys the database holds.
    await as_request(bridge_env, "DELETE", f"/devices/{device}", {})
    status, _ = await as_request(bridge_env, "PUT", f"/devices/{device}", {"display_name": "x"})
    assert status in (200, 201)
    error = await start_fails(bridge_env, db_url)
    assert isinstance(error, DeviceMismatch) and "not the ones in the database" in str(error)


async def test_a_transaction_of_only_to_device_messages_is_stored_before_its_answer(
    e2ee_bridge: Bridge, bridge_env: BridgeEnv
) -> None:
    """Room keys come in transactions without room events: acknowledged unstored, a crash
    before they are handled would lose them."""
    import aiohttp

    bridge = e2ee_bridge
    assert bridge.encryption is not None
    release = asyncio.Event()
    real = bridge.encryption.handle_extras

    async def slow(data: dict[str, Any]) -> None:
        await release.wait()
        await real(data)

    bridge.encryption.handle_extras = slow  # type: ignore[method-assign]
    msg = {
        "type": "m.room.encrypted",
        "sender": "@someone:bridgekit.test",
        "to_user_id": bridge.bot_mxid,
        "to_device_id": bridge.encryption.backend.device_id,
        "content": {"algorithm": "m.olm.v1.curve25519-aes-sha2", "ciphertext": {}},
    }
    body = {"events": [], "de.sorunome.msc2409.to_device": [msg]}
    url = f"http://127.0.0.1:{bridge_env.as_port}/_matrix/app/v1/transactions/td-{id(msg)}"
    async with aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {bridge_env.hs_token}"}
        async with s.put(url, json=body, headers=headers) as resp:
            assert resp.status == 200
    pending = await bridge.store.pending_transactions()
    assert any(txn[0] == f"td-{id(msg)}" and "to_device" in b for txn, b in pending)
    release.set()
    await eventually(lambda: bridge.inbox.pending == 0)


async def test_a_message_whose_key_comes_late_waits_for_it_and_is_bridged_once(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """A failed decryption never fails the transaction: the event is kept, its sender is
    told after ``decrypt_timeout``, and it is bridged (once) when its key arrives."""
    bridge = await make_bridge(**ENCRYPTION, **{"encryption.decrypt_timeout": 1})
    assert bridge.encryption is not None
    backend = bridge.encryption.backend
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        # The room keys alice's client sends from now on are held back (by push and /sync).
        held: list[dict[str, Any]] = []
        real = backend.handle_to_device

        async def hold(events: Any) -> None:
            held.extend(events)

        backend.handle_to_device = hold  # type: ignore[method-assign]
        event_id = await alice.send_text(room_id, "late key")
        await eventually(lambda: bridge.encryption.waiting_count(), timeout=30)  # type: ignore[union-attr]
        assert not [i for i in net.sent if i.kind == "message" and i.data.event_id == event_id]
        assert bridge.encryption.figures()["waiting_events"] == 1
        # After decrypt_timeout, alice is told (in the room, encrypted like everything else).
        notice = await alice.wait_for(
            lambda: next(
                (
                    m
                    for m in alice.messages.get(room_id, ())
                    if "could not decrypt your message" in m["content"].get("body", "")
                ),
                None,
            ),
            timeout=30,
        )
        assert notice["sender"] == bridge.bot_mxid and notice["decrypted"] is True
        # The key arrives: the waiting message is bridged, once.
        backend.handle_to_device = real  # type: ignore[method-assign]
        assert held
        await real(held)
        await bridge.encryption.retry_waiting()
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        await eventually(lambda: _is_zero(bridge.encryption.waiting_count()))  # type: ignore[union-attr]
        await bridge.encryption.retry_waiting()
        await client.remote_message(chat, "bob", "after the late one")
        await alice.wait_for_message(room_id, "after the late one")
        bridged = [i for i in net.sent if i.kind == "message" and i.data.event_id == event_id]
        assert len(bridged) == 1 and bridged[0].data.content.body == "late key"
        families = {f.name: f for f in bridge.metrics.families()}
        encryption = {s.labels["what"]: s.value for s in families["bridgekit_encryption"].samples}
        assert encryption["waiting_events"] == 0
        assert encryption["decryption_failures"] == 1  # the one its sender was told about
        assert encryption["one_time_keys"] > 0


async def _is_zero(count: Any) -> bool:
    return await count == 0


async def test_restart_rotated_key_while_down_and_a_new_device(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """The bridge stops; meanwhile alice sends with her old room key, then rotates it and
    sends again. Synapse's catch-up after the outage brings the room events but not the
    to-device message with the new key (Synapse #14710): the bridge reads it with /sync as
    its device. After the restart (same database) every message is bridged once, in order,
    the bridge's own messages still decrypt, and a device alice adds later gets the keys of
    what the bridge sends afterwards."""
    bridge = await make_bridge(**ENCRYPTION)
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        first = await alice.send_text(room_id, "before the stop")
        net = fake(bridge).network
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == first)
        await make_bridge.stop(bridge)  # type: ignore[attr-defined]

        old_session = await alice.send_text(room_id, "while down, old key")
        alice.client.olm.outbound_group_sessions.pop(room_id, None)  # the user's client rotates
        new_session = await alice.send_text(room_id, "while down, new key")

        # The fake network lives in the connector: the new one knows the chat from its config.
        members = [client.login.remote_id, "bob"]
        bridge = await make_bridge(**ENCRYPTION, **{"networks.fake.chats": {chat: members}})
        net = fake(bridge).network
        client = next(iter(bridge.clients.values()))
        for event_id in (old_session, new_session):
            await net.wait_for(
                lambda i, e=event_id: i.kind == "message" and i.data.event_id == e, timeout=60
            )
        bodies = [i.data.content.body for i in net.sent if i.kind == "message"]
        assert bodies.count("while down, old key") == 1
        assert bodies.count("while down, new key") == 1
        assert bodies.index("while down, old key") < bodies.index("while down, new key")

        # The bridge's own side after the restart: its messages still decrypt.
        await client.remote_message(chat, "bob", "after the restart")
        await alice.wait_for_message(room_id, "after the restart")

        # A new device of alice's: what the bridge sends afterwards is readable on it.
        second = E2EEUser(
            bridge_env.synapse.base_url, plain.user_id, user_store(tmp_path / "2", plain.user_id)
        )
        async with second:
            await second.wait_for(lambda: room_id in second.client.rooms)
            # The bridge learns of the device from the device-list change (transaction or
            # /sync); until then its messages are for the devices it knew.
            await eventually(
                lambda: _knows_device(bridge, plain.user_id, second.device_id), timeout=30
            )
            await client.remote_message(chat, "bob", "for the new device too")
            msg = await second.wait_for_message(room_id, "for the new device too")
            assert msg["decrypted"] is True


async def _knows_device(bridge: Bridge, user_id: str, device_id: str) -> bool:
    assert bridge.encryption is not None
    store = bridge.encryption.backend.store  # type: ignore[attr-defined]
    return await store.get_device(user_id, device_id) is not None


async def test_commands_in_an_encrypted_management_room(
    e2ee_bridge: Bridge, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """The user's client makes the DM with the bot encrypted: the welcome and the answers
    are encrypted, and commands are recognised once decrypted (an encrypted event has no
    ``body`` for the router to look at before that)."""
    bridge = e2ee_bridge
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        room_id = await alice.create_encrypted_room(invite=[bridge.bot_mxid], is_direct=True)

        def bot_says(text: str) -> Any:
            return lambda: next(
                (
                    m
                    for m in alice.messages.get(room_id, ())
                    if m["sender"] == bridge.bot_mxid and text in m["content"].get("body", "")
                ),
                None,
            )

        welcome = await alice.wait_for(bot_says("management room"))
        assert welcome["decrypted"] is True
        await alice.send_text(room_id, "help")
        answer = await alice.wait_for(bot_says("login"))
        assert answer["decrypted"] is True
        raw = await raw_events(plain, room_id)
        assert {
            e["type"] for e in raw if e["sender"] == bridge.bot_mxid and "state_key" not in e
        } == {"m.room.encrypted"}


async def test_require_refuses_plaintext_in_an_encrypted_portal(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    bridge = await make_bridge(**ENCRYPTION, **{"encryption.require": True})
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        # A client that ignores the room's encryption sends in plaintext: not bridged.
        plaintext = await plain.send_text(room_id, "in the clear")
        notice = await alice.wait_for(
            lambda: next(
                (
                    m
                    for m in alice.messages.get(room_id, ())
                    if "requires encryption" in m["content"].get("body", "")
                ),
                None,
            )
        )
        assert notice["decrypted"] is True
        encrypted = await alice.send_text(room_id, "encrypted")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == encrypted)
        assert not [i for i in net.sent if i.kind == "message" and i.data.event_id == plaintext]


async def test_kill_9_while_the_user_rotates_the_key_loses_nothing(
    bridge_env: BridgeEnv, uid: Any, tmp_path: Path, db_url: str
) -> None:
    """The bridge is killed (SIGKILL); the user's client rotates the room key and sends.
    After the restart every message is bridged, in order, once: the catch-up brings the room
    events, /sync as the bot's device the key Synapse did not push (#14710)."""
    from tests.helpers import BridgeProcess
    from tests.test_e2e_reliability import _log_in_and_open_portal, _write_config

    log_path, cfg = tmp_path / "sent.jsonl", tmp_path / "config.yaml"
    plain = await bridge_env.synapse.register_user(uid("alice"))
    chat, remote = uid("chat"), uid("a")
    settings = {
        **ENCRYPTION,
        "networks.fake.sent_log": str(log_path),
        "networks.fake.chats": {chat: [remote, "bob"]},
        "logging.level": "INFO",
    }
    _write_config(bridge_env, cfg, db_url, **settings)

    def received() -> list[str]:
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        return [json.loads(x)["event_id"] for x in lines if json.loads(x)["kind"] == "message"]

    bridge = BridgeProcess(cfg, tmp_path / "bridge.out")
    bridge.start()
    alice = E2EEUser(bridge_env.synapse.base_url, plain.user_id, tmp_path / "alice")
    try:
        async with plain:
            room_id = await _log_in_and_open_portal(plain, bridge_env, remote, chat)
            async with alice:
                await alice.wait_for(
                    lambda: room_id in alice.client.rooms and alice.client.rooms[room_id].encrypted
                )
                first = await alice.send_text(room_id, "before the kill")
                await eventually(lambda: received() == [first], timeout=60)
                bridge.kill_9()
                alice.client.olm.outbound_group_sessions.pop(room_id, None)  # a new room key
                while_dead = [
                    await alice.send_text(room_id, "rotated while dead 1"),
                    await alice.send_text(room_id, "rotated while dead 2"),
                ]
                bridge.start()
                expected = [first, *while_dead]
                await eventually(lambda: len(received()) >= 3, timeout=90)
                await asyncio.sleep(1.5)  # a duplicate would show up now
                assert received() == expected, bridge.log_tail()
    finally:
        bridge.kill_9()


async def test_the_bot_is_cross_signed_and_its_recovery_key_kept_out_of_the_log(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything the bridge logs at DEBUG, with `bridgekit run`'s logging (setup_logging
    # keeps the libraries that log request bodies and SQL parameters at INFO).
    caplog.set_level(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in QUIET_AT_DEBUG}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        bridge = await make_bridge(**ENCRYPTION)
    finally:
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
    assert bridge.encryption is not None
    device = bridge.encryption.backend.device_id
    status, keys = await as_request(
        bridge_env, "POST", "/keys/query", {"device_keys": {bridge.bot_mxid: []}}
    )
    assert status == 200
    self_signing = keys["self_signing_keys"][bridge.bot_mxid]["keys"]
    assert bridge.bot_mxid in keys["master_keys"]
    signatures = keys["device_keys"][bridge.bot_mxid][device]["signatures"][bridge.bot_mxid]
    assert any(k in signatures for k in self_signing)  # the device is signed by the bot
    recovery = await bridge.db.fetchval("SELECT value FROM crypto_secret WHERE name='recovery_key'")
    assert recovery and len(recovery.replace(" ", "")) >= 48
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Cross-signed the bot's device" in logged  # the log was looked at
    assert recovery not in logged and recovery.replace(" ", "") not in logged
