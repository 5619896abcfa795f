"""More runtime features end to end: catch-up after reconnect, state notices, typing,
receipts, plumbing rooms, admin commands."""

from __future__ import annotations

import time

from bridgekit.bridge import Bridge
from bridgekit.contract.connector import BridgeStateEvent
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteMessage,
    RemoteTyping,
)
from tests.conftest import BridgeEnv, eventually
from tests.helpers import (
    admin_client,
    body_is,
    fake,
    ghost,
    login,
    management_room,
    notice_says,
    open_portal,
    portal_scene,
    room_with_bot,
)


async def test_reconnect_catches_up_missed_messages(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        # The message is in the room before its mapping is committed (the bridge records it
        # once the homeserver answered): wait for the mapping, as a catch-up would read it.
        await eventually(lambda: bridge.store.last_remote_message("fake", PortalKey(chat)))
        last = await bridge.store.last_remote_message("fake", PortalKey(chat))
        assert last is not None
        bridge.report_state(client.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, "network down")
        # The disconnect lasts longer than state_notice_delay (1 s in tests): the user is told.
        notice = await conv.next_notice(timeout=10)
        assert "TRANSIENT_DISCONNECT" in notice and "network down" in notice
        sent_at = time.time() - 3600
        net.history[chat] = [
            RemoteMessage(
                PortalKey(chat), EventSender("bob"), id=last, content=MessageContent("old")
            ),
            RemoteMessage(
                PortalKey(chat),
                EventSender("bob"),
                timestamp=sent_at,
                id=uid("m"),
                content=MessageContent("missed one"),
            ),
            RemoteMessage(
                PortalKey(chat),
                EventSender("bob"),
                timestamp=sent_at + 1,
                id=uid("m"),
                content=MessageContent("missed two"),
            ),
        ]
        bridge.report_state(client.login.id, BridgeStateEvent.CONNECTED)
        one = await alice.wait_for_event(room_id, body_is("missed one"))
        two = await alice.wait_for_event(room_id, body_is("missed two"))
        assert one["sender"] == ghost("bob")
        assert one["origin_server_ts"] == int(sent_at * 1000)  # the remote timestamp is kept
        assert two["origin_server_ts"] == int((sent_at + 1) * 1000)
        # "old" was already bridged: catching up does not repeat it.
        assert not [e for e in alice.history(room_id) if e.get("content", {}).get("body") == "old"]


async def test_typing_both_ways(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        await scene.until_transactions_flow()
        await alice.request(
            "PUT", f"/rooms/{room_id}/typing/{alice.user_id}", {"typing": True, "timeout": 10000}
        )
        typing = await net.wait_for(lambda i: i.kind == "typing" and i.data.typing)
        assert typing.data.user_id == alice.user_id and typing.chat_id == chat
        await alice.request("PUT", f"/rooms/{room_id}/typing/{alice.user_id}", {"typing": False})
        await net.wait_for(lambda i: i.kind == "typing" and not i.data.typing)
        # remote typing -> the ghost types in Matrix
        await client.emit(RemoteTyping(PortalKey(chat), EventSender("bob"), timeout_ms=10000))
        evt = await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.typing"
                and ghost("bob") in e.get("content", {}).get("user_ids", [])
            ),
        )
        assert evt


async def test_read_receipts_reach_the_network(bridge: Bridge, bridge_env: BridgeEnv, uid):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        await scene.until_transactions_flow()
        msg_id = await client.remote_message(chat, "bob", "read me")
        evt = await alice.wait_for_event(room_id, body_is("read me"))
        await alice.request("POST", f"/rooms/{room_id}/receipt/m.read/{evt['event_id']}", {})
        receipt = await net.wait_for(lambda i: i.kind == "receipt")
        assert receipt.data.remote_id == msg_id and receipt.data.user_id == alice.user_id


async def test_plumbing_an_existing_room(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, name="Plumbed", members=[client.login.remote_id, "bob"])
        await eventually(lambda: bridge.matrix.state_store is not None)
        room_id = await room_with_bot(bridge, alice, name="Our room")
        await alice.send_text(room_id, f"!bridge fake {chat}")
        await alice.wait_for_event(
            room_id, lambda e: "Bridged this room" in e.get("content", {}).get("body", "")
        )
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.mxid == room_id and portal.plumbed
        info = await alice.get_state(room_id, "m.bridge", f"net.bridgekit://fake/{chat}")
        assert info["channel"]["id"] == chat
        await client.remote_message(chat, "bob", "into the plumbed room")
        await alice.wait_for_event(room_id, body_is("into the plumbed room"))
        await alice.send_text(room_id, "!unbridge")
        await alice.wait_for_event(
            room_id, lambda e: "no longer bridged" in e.get("content", {}).get("body", "")
        )
        assert await bridge.store.get_portal("fake", PortalKey(chat)) is None


async def test_plumbing_refuses_a_chat_id_the_network_does_not_know(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        room_id = await room_with_bot(bridge, alice)
        await alice.send_text(room_id, "!bridge fake no-such-chat")
        await alice.wait_for_event(room_id, notice_says("not a valid fake chat: no such chat"))
        assert await bridge.store.get_portal("fake", PortalKey("no-such-chat")) is None


async def test_plumbing_needs_room_admin(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with alice, bob:
        room_id = await room_with_bot(bridge, alice, bot_is_admin=False, invite=[bob.user_id])
        await bob.join(room_id)
        await bob.send_text(room_id, "!bridge fake somechat")
        await bob.wait_for_event(room_id, notice_says("Only room admins"))


async def test_delete_portal_is_admin_only(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    admin = await admin_client(bridge_env.synapse)
    async with alice, admin:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        await alice.send_text(room_id, "!delete-portal")
        await alice.wait_for_event(
            room_id, lambda e: "do not have permission" in e.get("content", {}).get("body", "")
        )
        assert await bridge.store.get_portal("fake", PortalKey(chat)) is not None
        await alice.invite(room_id, admin.user_id)
        await admin.join(room_id)
        await admin.send_text(room_id, "!delete-portal")

        async def gone() -> bool:
            return await bridge.store.get_portal("fake", PortalKey(chat)) is None

        await eventually(gone)
        # The bot and the ghosts leave the room.
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == bridge.bot_mxid
                and e["content"].get("membership") == "leave"
            ),
        )


async def test_list_portals_shows_the_users_portals(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, name="Listed", members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        listing = await conv.say("list-portals")
        assert chat in listing and room_id in listing


async def test_ghost_names_follow_the_sender_and_rooms_get_avatars(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    from tests.test_e2e_media_status import upload

    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        avatar = await upload(bridge_env.synapse.base_url, alice.access_token, b"png", "a.png")
        fake(bridge).network.add_chat(
            chat, members=[client.login.remote_id, "carl"], avatar_url=avatar
        )
        await client.emit(
            RemoteMessage(
                PortalKey(chat),
                EventSender("carl", name="Carl"),
                id=uid("m"),
                content=MessageContent("hi"),
            )
        )
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        await alice.wait_for_event(room_id, body_is("hi"))
        assert (await alice.get_state(room_id, "m.room.avatar"))["url"] == avatar
        assert (await alice.get_profile(ghost("carl")))["displayname"] == "Carl"
        await client.emit(
            RemoteMessage(
                PortalKey(chat),
                EventSender("carl", name="Carl Renamed"),
                id=uid("m"),
                content=MessageContent("renamed"),
            )
        )
        await alice.wait_for_event(room_id, body_is("renamed"))
        assert (await alice.get_profile(ghost("carl")))["displayname"] == "Carl Renamed"


async def test_remote_presence_reaches_matrix(bridge: Bridge, bridge_env: BridgeEnv, uid):
    from bridgekit.contract.events import RemotePresence

    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        await open_portal(bridge, alice, client, chat)
        await client.emit(
            RemotePresence(
                PortalKey(chat), EventSender("bob"), presence="unavailable", status_msg="at lunch"
            )
        )

        async def away() -> bool:
            status = await alice.request("GET", f"/presence/{ghost('bob')}/status")
            return (
                status.get("presence") == "unavailable" and status.get("status_msg") == "at lunch"
            )

        await eventually(away)
        # Kept (set again before the homeserver's timeout) while the network is reachable;
        # not once no login of it is connected.
        await eventually(lambda: len(bridge.presence) == 1)  # once the bridge's PUT returned
        bridge.report_state(client.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, "gone")
        assert len(bridge.presence) == 0


async def test_an_event_the_database_cannot_store_does_not_take_its_batch_with_it(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """A lone surrogate (what json.loads makes of "\\ud800" in a network's JSON) cannot be
    encoded for the database: that event arrives with it replaced, and the others queued with
    it in the same group commit arrive too (they were retried with it, then all dropped)."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        api = bridge.connectors["fake"].bridge

        def said(body: str) -> RemoteMessage:
            return RemoteMessage(
                PortalKey(chat), EventSender("bob"), id=uid("m"), content=MessageContent(body)
            )

        api.queue_remote_event_soon(client.login.id, said("before"))
        api.queue_remote_event_soon(client.login.id, said("bad \ud800 one"))
        api.queue_remote_event_soon(client.login.id, said("after"))
        await alice.wait_for_event(room_id, body_is("before"), timeout=20)
        await alice.wait_for_event(room_id, body_is("bad ? one"), timeout=20)
        await alice.wait_for_event(room_id, body_is("after"), timeout=20)
