"""Routing in encrypted rooms, end to end (real Synapse, the fake network, matrix-nio on
vodozemac as the user's client): an encrypted event has no ``body`` for the router to read
before it is decrypted, yet commands in any room the bot is in, and edits, replies,
reactions and redactions in portals, must be seen like their plaintext twins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from tests.conftest import BridgeEnv, BridgeFactory, eventually
from tests.helpers import fake, ghost, login
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, open_encrypted_portal, raw_events


def said_by(alice: Any, room_id: str, sender: str, text: str) -> Any:
    """A check for ``alice.wait_for``: the decrypted message of ``sender`` containing ``text``."""
    return lambda: next(
        (
            m
            for m in alice.messages.get(room_id, ())
            if m["sender"] == sender and text in m["content"].get("body", "")
        ),
        None,
    )


@pytest.mark.engine_independent  # routing: the engine has no part in it
async def test_an_encrypted_room_is_plumbed_by_an_encrypted_command(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """A room admin invites the bot to an encrypted room that is neither a portal nor a
    management room and sends `!bridge fake <chat>`, encrypted: the bot decrypts it (it holds
    the keys of the rooms it is in), runs it, and the portal that results is encrypted both
    ways."""
    bridge: Bridge = await make_bridge(**ENCRYPTION)
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client = await login(bridge, plain, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, name="Plumbed", members=[client.login.remote_id, "bob"])
        room_id = await alice.create_encrypted_room(
            invite=[bridge.bot_mxid],
            power_level_override={"users": {bridge.bot_mxid: 100}},
        )
        await eventually(lambda: bridge.bot_mxid in alice.client.rooms[room_id].users, 30)
        await alice.send_text(room_id, "just chatting, nothing for the bot")
        await alice.send_text(room_id, f"!bridge fake {chat}")
        answer = await alice.wait_for(said_by(alice, room_id, bridge.bot_mxid, "Bridged this"))
        assert answer["decrypted"] is True
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.mxid == room_id and portal.plumbed

        # remote -> Matrix: the ghost's message is encrypted, and alice's client decrypts it.
        await client.remote_message(chat, "bob", "into the encrypted plumbed room")
        msg = await alice.wait_for_message(room_id, "into the encrypted plumbed room")
        assert msg["sender"] == ghost("bob") and msg["decrypted"] is True
        # Matrix -> remote: alice's encrypted message reaches the network in plaintext.
        event_id = await alice.send_text(room_id, "out of the encrypted plumbed room")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        assert sent.chat_id == chat
        assert sent.data.content.body == "out of the encrypted plumbed room"
        # The chatter before the command was decrypted and dropped: never bridged, no answer.
        bodies = [i.data.content.body for i in net.sent if i.kind == "message"]
        assert bodies == ["out of the encrypted plumbed room"]
        raw = await raw_events(plain, room_id)
        ours = [e for e in raw if e["sender"] in (bridge.bot_mxid, ghost("bob"))]
        assert {e["type"] for e in ours if "state_key" not in e} == {"m.room.encrypted"}
        assert not any("into the encrypted" in str(e["content"]) for e in raw)


async def test_after_a_restart_the_bot_still_reads_commands_in_its_encrypted_rooms(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """The rooms the bot is joined to are read from the homeserver at start: a room it
    joined before the restart is still one whose encrypted events it decrypts."""
    bridge: Bridge = await make_bridge(**ENCRYPTION)
    bot_rooms = bridge.router.bot_rooms
    seen: list[dict[str, Any]] = []
    real_see = bot_rooms.see

    def see(evt: dict[str, Any]) -> None:
        seen.append(evt)
        real_see(evt)

    bot_rooms.see = see  # type: ignore[method-assign]
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        room_id = await alice.create_encrypted_room(invite=[bridge.bot_mxid])
        # The bot's join came in a transaction before the stop (it is not redelivered after:
        # the new bridge knows the room from the homeserver only).
        await eventually(
            lambda: any(
                e["room_id"] == room_id and e["content"].get("membership") == "join" for e in seen
            ),
            30,
        )
        await make_bridge.stop(bridge)  # type: ignore[attr-defined]
        bridge = await make_bridge(**ENCRYPTION)
        await alice.send_text(room_id, "!bridge fake no-such-chat")
        answer = await alice.wait_for(said_by(alice, room_id, bridge.bot_mxid, "no-such-chat"))
        assert "not a valid fake chat" in answer["content"]["body"]
        assert answer["decrypted"] is True


@pytest.mark.engine_independent  # routing: the engine has no part in it
async def test_edits_replies_reactions_and_redactions_in_an_encrypted_portal(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """Edits, replies and reactions are encrypted like messages (reactions as Element sends
    them), with only ``m.relates_to`` outside; redactions are never encrypted. Each reaches
    the network naming the right remote message."""
    bridge: Bridge = await make_bridge(**ENCRYPTION)
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        bob_id = await client.remote_message(chat, "bob", "reply to me")
        bob_event = (await alice.wait_for_message(room_id, "reply to me"))["event_id"]

        original = await alice.send_text(room_id, "teh original")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == original)
        edit = await alice.send_event(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "* the original",
                "m.new_content": {"msgtype": "m.text", "body": "the original"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            },
        )
        edited = await net.wait_for(lambda i: i.kind == "edit" and i.data.event_id == edit)
        assert edited.data.target_id == sent.remote_id
        assert edited.data.content.body == "the original"

        reply = await alice.send_event(
            room_id,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "> <@_fake_bob> reply to me\n\nmy reply",
                "m.relates_to": {"m.in_reply_to": {"event_id": bob_event}},
            },
        )
        replied = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == reply)
        assert replied.data.content.reply_to == bob_id
        assert replied.data.content.body == "my reply"

        reaction = await alice.send_event(
            room_id,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": bob_event, "key": "👍"}},
        )
        reacted = await net.wait_for(lambda i: i.kind == "reaction" and i.data.event_id == reaction)
        assert reacted.data.target_id == bob_id and reacted.data.key == "👍"

        await alice.redact(room_id, reaction)
        removed = await net.wait_for(lambda i: i.kind == "reaction_remove")
        assert removed.data.target_id == bob_id and removed.data.key == "👍"
        await alice.redact(room_id, original)
        redacted = await net.wait_for(lambda i: i.kind == "redaction")
        assert redacted.data.target_id == sent.remote_id

        # What alice sent was encrypted on the homeserver (the test saw decryption at work).
        raw = {e["event_id"]: e for e in await raw_events(plain, room_id)}
        for event_id in (edit, reply, reaction):
            assert raw[event_id]["type"] == "m.room.encrypted"


@pytest.mark.engine_independent  # routing: the engine has no part in it
async def test_require_refuses_a_reaction_sent_in_the_clear(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """``encryption.require``: some clients (nio among them) send reactions in the clear even
    in an encrypted room; refused like a plaintext message, while an encrypted one passes."""
    bridge: Bridge = await make_bridge(**ENCRYPTION, **{"encryption.require": True})
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        bob_id = await client.remote_message(chat, "bob", "react to me")
        bob_event = (await alice.wait_for_message(room_id, "react to me"))["event_id"]

        def reaction(key: str) -> dict[str, Any]:
            return {"m.relates_to": {"rel_type": "m.annotation", "event_id": bob_event, "key": key}}

        resp = await alice.client.room_send(  # nio sends reactions in the clear
            room_id, "m.reaction", reaction("👀"), ignore_unverified_devices=True
        )
        clear = resp.event_id
        notice = await alice.wait_for(
            said_by(alice, room_id, bridge.bot_mxid, "requires encryption")
        )
        assert notice["decrypted"] is True and "m.reaction" in notice["content"]["body"]
        encrypted = await alice.send_event(room_id, "m.reaction", reaction("🎉"))
        sent = await net.wait_for(lambda i: i.kind == "reaction" and i.data.event_id == encrypted)
        assert sent.data.target_id == bob_id
        assert not [i for i in net.sent if i.kind == "reaction" and i.data.event_id == clear]
        raw = {e["event_id"]: e["type"] for e in await raw_events(plain, room_id)}
        assert (raw[clear], raw[encrypted]) == ("m.reaction", "m.room.encrypted")


async def test_no_notice_about_a_missing_key_in_a_room_that_is_no_portal(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """Outside portals and management rooms the bot decrypts only to find commands: an
    event whose key does not come in time is dropped without a notice (chatter must not make
    the bot talk), and not run when its key comes late."""
    bridge: Bridge = await make_bridge(**ENCRYPTION, **{"encryption.decrypt_timeout": 1})
    assert bridge.encryption is not None
    encryption = bridge.encryption
    backend = encryption.backend
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        room_id = await alice.create_encrypted_room(invite=[bridge.bot_mxid])
        await eventually(lambda: bridge.bot_mxid in alice.client.rooms[room_id].users, 30)
        held: list[dict[str, Any]] = []
        real = backend.handle_to_device

        async def hold(events: Any) -> None:
            held.extend(events)

        backend.handle_to_device = hold  # type: ignore[method-assign]
        await alice.send_text(room_id, "!bridge fake never-run")
        await eventually(lambda: _count_is(encryption.waiting_count(), 1), timeout=30)
        # Past the timeout (and a round of the loop that tells senders): dropped, untold.
        await eventually(lambda: _count_is(encryption.waiting_count(), 0), timeout=30)
        backend.handle_to_device = real  # type: ignore[method-assign]
        assert held
        await real(held)
        await encryption.retry_waiting()
        await alice.send_text(room_id, "!bridge fake no-such-chat")
        await alice.wait_for(said_by(alice, room_id, bridge.bot_mxid, "no-such-chat"))
        said = [m["content"]["body"] for m in alice.messages.get(room_id, ())]
        said = [b for b in said if not b.startswith("!")]
        assert len(said) == 1 and "not a valid fake chat" in said[0], said


async def _count_is(count: Any, n: int) -> bool:
    return await count == n


async def test_a_message_whose_key_came_first_waits_behind_the_one_still_waiting(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    """The first message of a new room key waits for the key; the key comes, but before that
    message is handed back the next one (same key) arrives and could be decrypted at once:
    it must not overtake the first (IRC showed it after a SIGKILL: lines out of order)."""
    bridge: Bridge = await make_bridge(**ENCRYPTION)
    assert bridge.encryption is not None
    encryption = bridge.encryption
    backend = encryption.backend
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net = fake(bridge).network
        held: list[dict[str, Any]] = []
        real = backend.handle_to_device

        async def hold(events: Any) -> None:
            held.extend(events)

        backend.handle_to_device = hold  # type: ignore[method-assign]
        first = await alice.send_text(room_id, "first, its key held back")
        await eventually(lambda: _count_is(encryption.waiting_count(), 1), timeout=30)
        backend.handle_to_device = real  # type: ignore[method-assign]
        assert held
        await real(held)  # the key is there now, and nothing has handed the first back yet
        second = await alice.send_text(room_id, "second, same key")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == second)
        sent = [i.data.event_id for i in net.sent if i.kind == "message"]
        assert sent[-2:] == [first, second]
        await eventually(lambda: _count_is(encryption.waiting_count(), 0), timeout=30)
