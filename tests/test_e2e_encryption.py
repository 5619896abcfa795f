"""End-to-bridge encryption end to end: a real Synapse, the runtime with the fake network, and
the Matrix user's side a real E2EE client (matrix-nio on vodozemac)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.testing.e2ee_client import E2EEUser, user_store
from tests.conftest import PICKLE_KEY, BridgeEnv, BridgeFactory
from tests.helpers import fake, ghost, login

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
