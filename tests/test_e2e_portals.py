"""Portals end to end: a real Synapse, the runtime, and the in-memory fake network."""

from __future__ import annotations

from typing import Any

from bridgekit.bridge import Bridge
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteEdit,
    RemoteReaction,
    RemoteReactionRemove,
    RemoteRedaction,
)
from tests.conftest import BridgeEnv, eventually
from tests.helpers import (
    DOMAIN,
    body_is,
    fake,
    ghost,
    give_power,
    login,
    open_portal,
    portal_scene,
)


async def test_remote_message_creates_portal_with_ghost(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, name="General", members=[client.login.remote_id, "bob"])
        fake(bridge).network.users["bob"] = "Bob Remote"
        room_id = await open_portal(bridge, alice, client, chat)
        evt = await alice.wait_for_event(room_id, body_is("hello from the remote side"))
        assert evt["sender"] == ghost("bob")
        assert (await alice.get_profile(ghost("bob")))["displayname"] == "Bob Remote"
        assert (await alice.get_state(room_id, "m.room.name"))["name"] == "General"
        info = await alice.get_state(room_id, "m.bridge", f"net.bridgekit://fake/{chat}")
        assert info["protocol"]["id"] == "fake" and info["channel"]["id"] == chat


async def test_matrix_message_reaches_network_once(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        event_id = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "hi *there*",
                "format": "org.matrix.custom.html",
                "formatted_body": "hi <em>there</em>",
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        assert sent.data.content.body == "hi *there*"
        assert sent.data.content.html == "hi <em>there</em>"
        assert sent.data.sender == alice.user_id and sent.chat_id == chat
        # The network echoes our message back with its id: it must not reappear on Matrix.
        await client.remote_message(
            chat, client.login.remote_id, "hi *there*", msg_id=sent.remote_id
        )
        await client.remote_message(chat, "bob", "after the echo")
        await alice.wait_for_event(room_id, body_is("after the echo"))
        bodies = [
            e["content"].get("body")
            for e in alice.history(room_id)
            if e["type"] == "m.room.message"
        ]
        assert bodies.count("hi *there*") == 1
        assert [i.data.event_id for i in net.sent if i.kind == "message"].count(event_id) == 1


async def test_edits_both_ways(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        # Matrix -> remote
        event_id = await alice.send_text(room_id, "teh typo")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* the typo",
                "m.new_content": {"msgtype": "m.text", "body": "the typo"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
            },
        )
        edit = await net.wait_for(lambda i: i.kind == "edit")
        assert edit.data.target_id == sent.remote_id and edit.data.content.body == "the typo"
        # remote -> Matrix
        msg_id = await client.remote_message(chat, "bob", "wrogn")
        original = await alice.wait_for_event(room_id, body_is("wrogn"))
        await client.emit(
            RemoteEdit(
                PortalKey(chat),
                EventSender("bob"),
                target_id=msg_id,
                content=MessageContent("wrong"),
            )
        )
        evt = await alice.wait_for_event(
            room_id,
            lambda e: e.get("content", {}).get("m.new_content") and e["sender"] != alice.user_id,
        )
        assert evt["content"]["m.new_content"]["body"] == "wrong"
        assert evt["content"]["m.relates_to"] == {
            "rel_type": "m.replace",
            "event_id": original["event_id"],
        }
        assert evt["sender"] == ghost("bob")


async def test_reactions_and_redactions_both_ways(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        msg_id = await client.remote_message(chat, "bob", "react to me")
        target = await alice.wait_for_event(room_id, body_is("react to me"))
        # Matrix reaction -> network, and its removal
        reaction_event = await alice.react(room_id, target["event_id"], "👍")
        got = await net.wait_for(lambda i: i.kind == "reaction")
        assert got.data.target_id == msg_id and got.data.key == "👍"
        await alice.redact(room_id, reaction_event)
        removed = await net.wait_for(lambda i: i.kind == "reaction_remove")
        assert removed.data.target_id == msg_id and removed.data.key == "👍"
        # Remote reaction -> Matrix annotation from the ghost, then removed
        mine = await alice.send_text(room_id, "my message")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == mine)
        await client.emit(
            RemoteReaction(PortalKey(chat), EventSender("bob"), target_id=sent.remote_id, key="🎉")
        )
        annotation = await alice.wait_for_event(
            room_id, lambda e: e.get("type") == "m.reaction" and e["sender"] != alice.user_id
        )
        assert annotation["sender"] == ghost("bob")
        assert annotation["content"]["m.relates_to"] == {
            "rel_type": "m.annotation",
            "event_id": mine,
            "key": "🎉",
        }
        await client.emit(
            RemoteReactionRemove(
                PortalKey(chat), EventSender("bob"), target_id=sent.remote_id, key="🎉"
            )
        )
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.redaction"
                and e.get("redacts", e.get("content", {}).get("redacts")) == annotation["event_id"]
            ),
        )
        # Matrix redaction of a message -> network
        await alice.redact(room_id, mine)
        red = await net.wait_for(lambda i: i.kind == "redaction")
        assert red.data.target_id == sent.remote_id
        # Remote redaction -> Matrix
        await client.emit(RemoteRedaction(PortalKey(chat), EventSender("bob"), target_id=msg_id))
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.redaction"
                and e.get("redacts", e.get("content", {}).get("redacts")) == target["event_id"]
            ),
        )


async def test_replies_and_threads_both_ways(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        root_id = await client.remote_message(chat, "bob", "thread root")
        root = await alice.wait_for_event(room_id, body_is("thread root"))
        # remote reply and thread reply -> Matrix relations
        await client.remote_message(chat, "bob", "a reply", reply_to=root_id)
        reply = await alice.wait_for_event(room_id, body_is("a reply"))
        assert reply["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == root["event_id"]
        await client.remote_message(chat, "bob", "in thread", thread_root=root_id)
        threaded = await alice.wait_for_event(room_id, body_is("in thread"))
        assert threaded["content"]["m.relates_to"]["rel_type"] == "m.thread"
        assert threaded["content"]["m.relates_to"]["event_id"] == root["event_id"]
        # Matrix reply (with the legacy quoted fallback) and thread message -> network ids
        reply_eid = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "> <@bob> thread root\n\nmy answer",
                "m.relates_to": {"m.in_reply_to": {"event_id": root["event_id"]}},
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == reply_eid)
        assert sent.data.content.reply_to == root_id
        assert sent.data.content.body == "my answer"  # fallback stripped, nothing quoted leaks
        thread_eid = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "thread answer",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": root["event_id"],
                    "is_falling_back": True,
                    "m.in_reply_to": {"event_id": root["event_id"]},
                },
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == thread_eid)
        assert sent.data.content.thread_root == root_id
        assert sent.data.content.reply_to is None
        assert sent.data.reply_to_thread is None
        # A main-timeline reply to a message in a thread names that thread too.
        plain_eid = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "answering the thread message",
                "m.relates_to": {"m.in_reply_to": {"event_id": threaded["event_id"]}},
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == plain_eid)
        assert sent.data.content.thread_root is None
        assert sent.data.content.reply_to is not None
        assert sent.data.content.reply_to != root_id
        assert sent.data.reply_to_thread == root_id


async def test_portal_created_from_alias_query(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("Chat")  # upper case: exercises the localpart escaping
        fake(bridge).network.add_chat(chat, name="Aliased", members=[client.login.remote_id])
        from bridgekit.contract.ids import escape_localpart

        room_id = await alice.join(f"#_fake_{escape_localpart(chat)}:{DOMAIN}")
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.mxid == room_id
        assert (await alice.get_state(room_id, "m.room.name"))["name"] == "Aliased"
        # An alias for a chat that does not exist is not found.
        try:
            await alice.join(f"#_fake_nosuchchat{uid('x')}:{DOMAIN}")
            raise AssertionError("joined a non-existent alias")
        except Exception as e:
            assert "404" in str(e) or "M_NOT_FOUND" in str(e)


async def test_relay_mode(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))  # no login of her own
    async with alice, carol:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        await alice.invite(room_id, carol.user_id)
        await carol.join(room_id)
        # Without a relay, carol is told she is not logged in.
        await carol.send_text(room_id, "unrelayed")
        await carol.wait_for_event(
            room_id, lambda e: "not logged in" in e.get("content", {}).get("body", "")
        )
        await give_power(bridge, room_id, alice.user_id, 50)  # set-relay: moderators
        await alice.send_text(room_id, "!set-relay")
        await alice.wait_for_event(
            room_id, lambda e: "now relayed" in e.get("content", {}).get("body", "")
        )
        eid = await carol.send_text(room_id, "relay me")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == eid)
        assert sent.login_id == client.login.id
        assert sent.data.relayed_for == carol.user_id
        assert sent.data.content.body == f"<{carol.user_id[1:].split(':')[0]}> relay me"
        # Every line is labelled (a connector without its own line handling gets the body so),
        # and a display name another member has is told apart by the Matrix id.
        shared = alice.user_id[1:].split(":")[0]
        await carol.set_displayname(shared)
        await carol.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == carol.user_id
                and e.get("content", {}).get("displayname") == shared
            ),
        )
        eid = await carol.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "one\n<bob> two",
                "format": "org.matrix.custom.html",
                "formatted_body": "one<br>&lt;bob&gt; two",
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == eid)
        label = f"<{alice.user_id[1:].split(':')[0]} ({carol.user_id})>"
        assert sent.data.content.body == f"{label} one\n{label} <bob> two"
        assert sent.data.content.html is None  # labelled once at its start: not sent
        await alice.send_text(room_id, "!unset-relay")
        await alice.wait_for_event(
            room_id, lambda e: "Relay mode is off" in e.get("content", {}).get("body", "")
        )
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.relay_login is None


async def test_double_puppeting_with_shared_secret(make_bridge, bridge_env: BridgeEnv, uid):
    bridge = await make_bridge(
        **{"double_puppet.secrets": {DOMAIN: f"as_token:{bridge_env.dp_token}"}}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        # Alice's own message from the remote side creates the portal; she is joined by her puppet.
        await client.remote_message(chat, client.login.remote_id, "sent from my phone")
        evt = await alice.wait_for_event(None, body_is("sent from my phone"))
        assert evt["sender"] == alice.user_id
        assert evt["content"]["fi.mau.double_puppet_source"] == "bridgekit"
        # Its echo through the transaction stream is not bridged back to the network.
        await client.remote_message(chat, "bob", "marker")
        await alice.wait_for_event(evt["room_id"], body_is("marker"))
        await eventually(lambda: bridge.inbox.pending == 0)
        assert not [i for i in net.sent if i.kind == "message"]


async def test_login_matrix_enables_double_puppeting(bridge: Bridge, bridge_env: BridgeEnv, uid):
    from tests.helpers import management_room

    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        assert "did not work" in await conv.say("login-matrix not-a-token")
        assert "enabled" in await conv.say(f"login-matrix {alice.access_token}")
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id])
        await client.remote_message(chat, client.login.remote_id, "puppeted")
        evt = await alice.wait_for_event(None, body_is("puppeted"))
        assert evt["sender"] == alice.user_id
        assert "disabled" in await conv.say("logout-matrix")


async def test_ghost_user_query_and_unknown_users(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        # Synapse asks the bridge about an unknown ghost before inviting it: it gets registered.
        room_id = await alice.create_room()
        await alice.invite(room_id, ghost(uid("someone")))
        members: dict[str, Any] = await alice.request("GET", f"/rooms/{room_id}/members")
        assert any(m["state_key"].startswith("@_fake_") for m in members["chunk"])


async def test_remote_edit_by_someone_else_is_ignored(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        msg_id = await client.remote_message(chat, "bob", "bob wrote this")
        await alice.wait_for_event(room_id, body_is("bob wrote this"))
        await client.emit(
            RemoteEdit(
                PortalKey(chat),
                EventSender("mallory"),
                target_id=msg_id,
                content=MessageContent("mallory's words"),
            )
        )
        await client.remote_message(chat, "bob", "marker")
        await alice.wait_for_event(room_id, body_is("marker"))
        assert not [e for e in alice.history(room_id) if "m.new_content" in e.get("content", {})]


async def test_a_moderator_redacting_anothers_reaction_does_not_remove_their_own(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """Only the reaction's own sender's removal reaches the network: a moderator's redaction
    of Alice's reaction went out from the moderator's login (removing what they never put)."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        carol = await bridge_env.synapse.register_user(uid("carol"))
        async with carol:
            carol_client = await login(bridge, carol, uid("c"))
            net.chats[chat].members.append(carol_client.login.remote_id)
            await alice.invite(room_id, carol.user_id)
            await carol.join(room_id)
            await give_power(bridge, room_id, carol.user_id, 50)
            await client.remote_message(chat, "bob", "react to me")
            target = await alice.wait_for_event(room_id, body_is("react to me"))
            reaction = await alice.react(room_id, target["event_id"], "👍")
            await net.wait_for(lambda i: i.kind == "reaction")
            await carol.redact(room_id, reaction)
            after = await carol.send_text(room_id, "after the redaction")
            await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == after)
            assert not [
                i for i in net.sent if i.kind == "reaction_remove" and i.data.portal.id == chat
            ]
            assert await bridge.store.reaction_by_event(reaction) is not None
