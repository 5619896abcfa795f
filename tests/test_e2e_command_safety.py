"""Commands that others could abuse, end to end against a real Synapse: a relay taken over,
portals listed to outsiders, secrets left in room history."""

from __future__ import annotations

from typing import Any

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import BridgeEnv, eventually
from tests.helpers import (
    Conversation,
    fake,
    give_power,
    login,
    login_fake,
    management_room,
    notice_says,
    open_portal,
    portal_scene,
)


async def is_redacted(user: MatrixTestClient, room_id: str, event_id: str) -> bool:
    evt = await user.request("GET", f"/rooms/{room_id}/event/{event_id}")
    return evt.get("content") == {}


async def trusted_management_room(client: MatrixTestClient, bridge: Bridge) -> Conversation:
    """A management room made as Element makes direct chats (the invitee, the bot, gets the
    creator's power): the bot can remove messages there."""
    room_id = await client.create_room(
        invite=[bridge.bot_mxid], is_direct=True, preset="trusted_private_chat"
    )
    conv = Conversation(client, room_id, bridge.bot_mxid)
    welcome = await conv.next_notice(timeout=20)
    assert "management room" in welcome and "cannot remove" not in welcome
    return conv


async def test_set_relay_needs_moderator_power_or_being_the_relay(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        mallory = await bridge_env.synapse.register_user(uid("mallory"))
        async with mallory:
            evil = await login(bridge, mallory, uid("m"))
            net.chats[chat].members.append(evil.login.remote_id)
            await alice.invite(room_id, mallory.user_id)
            await mallory.join(room_id)
            # Alice, a moderator, sets the relay.
            await give_power(bridge, room_id, alice.user_id, 50)
            await alice.send_text(room_id, "!set-relay")
            await alice.wait_for_event(room_id, notice_says("now relayed"))
            # Mallory has a login in the chat but no power: she cannot take it over.
            await mallory.send_text(room_id, "!set-relay")
            await mallory.wait_for_event(room_id, notice_says("Only room moderators"))
            portal = await bridge.store.get_portal("fake", PortalKey(chat))
            assert portal is not None and portal.relay_login == client.login.id
            # The current relay may set it again without power (here: after losing it).
            await give_power(bridge, room_id, alice.user_id, 0)
            await alice.send_text(room_id, "!set-relay")

            def relay_notices() -> int:
                return sum(
                    "now relayed" in str(e.get("content", {}).get("body"))
                    for e in alice.history(room_id)
                )

            await eventually(lambda: relay_notices() == 2)
            portal = await bridge.store.get_portal("fake", PortalKey(chat))
            assert portal is not None and portal.relay_login == client.login.id


async def test_unset_relay_needs_moderator_power_or_being_the_relay(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """Even while the relay's login is not connected (it did not load at this start, or its
    owner logged out): it is not for anyone in the room to drop."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _net = scene
        mallory = await bridge_env.synapse.register_user(uid("mallory"))
        async with mallory:
            await alice.invite(room_id, mallory.user_id)
            await mallory.join(room_id)
            await give_power(bridge, room_id, alice.user_id, 50)
            await alice.send_text(room_id, "!set-relay")
            await alice.wait_for_event(room_id, notice_says("now relayed"))
            await give_power(bridge, room_id, alice.user_id, 0)
            # Mallory, with no power: refused whether the relay's client is loaded or not.
            await mallory.send_text(room_id, "!unset-relay")
            await mallory.wait_for_event(room_id, notice_says("can unset"))
            bridge.clients.pop(client.login.id)  # as if it had failed to load at start
            try:
                await mallory.send_text(room_id, "!unset-relay")

                def refusals() -> int:
                    return sum(
                        "can unset" in str(e.get("content", {}).get("body"))
                        for e in mallory.history(room_id)
                    )

                await eventually(lambda: refusals() == 2)
                portal = await bridge.store.get_portal("fake", PortalKey(chat))
                assert portal is not None and portal.relay_login == client.login.id
                # Its owner may, without power.
                await alice.send_text(room_id, "!unset-relay")
                await alice.wait_for_event(room_id, notice_says("Relay mode is off"))
                portal = await bridge.store.get_portal("fake", PortalKey(chat))
                assert portal is not None and portal.relay_login is None
            finally:
                bridge.clients[client.login.id] = client


async def test_list_portals_shows_a_user_only_the_portals_they_belong_to(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, net = scene
        conv = await management_room(alice, bridge)
        assert room_id in await conv.say("list-portals")
        mallory = await bridge_env.synapse.register_user(uid("mallory"))
        async with mallory:
            await login(bridge, mallory, uid("m"))  # a login on the same network, no more
            listing = await (await management_room(mallory, bridge)).say("list-portals")
            assert room_id not in listing and chat not in listing
            assert "No portals" in listing


async def test_secret_commands_are_refused_and_removed_outside_the_management_room(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, _chat, room_id, _net = scene
        eid = await alice.send_text(room_id, f"!login-matrix {alice.access_token}")
        await alice.wait_for_event(room_id, notice_says("only works in your management room"))
        assert await is_redacted(alice, room_id, eid)  # the bot made this room: it can
        user = await bridge.store.get_user(alice.user_id)
        assert user is None or not user.double_puppet
        # A login asks for a password: it is not started where others would read the answer.
        await alice.send_text(room_id, "!login fake")
        await alice.wait_for_event(room_id, notice_says("Log in from your management room"))
        assert alice.user_id not in bridge.commands.pending_logins
        # In the management room it works, and the token leaves the room's history.
        conv = await trusted_management_room(alice, bridge)
        token_msg: dict[str, Any] = {}
        reply = await conv.say(f"login-matrix {alice.access_token}")
        assert "Double puppeting enabled" in reply
        for evt in alice.history(conv.room_id):
            if evt.get("sender") == alice.user_id and "login-matrix" in str(evt.get("content")):
                token_msg = evt
        assert token_msg, "the command is in the history the client received"
        await eventually(lambda: is_redacted(alice, conv.room_id, token_msg["event_id"]))


async def test_login_flow_passwords_are_redacted_or_the_user_is_told_once(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with alice, bob:
        conv = await trusted_management_room(alice, bridge)
        assert "username" in await conv.say("login fake")
        assert "password" in await conv.say("alice-remote")
        pw_id = await alice.send_text(conv.room_id, "pw")
        await conv.next_notice()
        await eventually(lambda: is_redacted(alice, conv.room_id, pw_id))
        # The username is no secret: it stays.
        user_msgs = [
            e
            for e in alice.history(conv.room_id)
            if e.get("sender") == alice.user_id and e.get("type") == "m.room.message"
        ]
        assert any(e["content"].get("body") == "alice-remote" for e in user_msgs)
        # A room made with the usual preset gives the bot no power: the welcome says so, and
        # the failed removal is not repeated at each secret.
        conv = await management_room(bob, bridge)
        welcome = [e for e in bob.history(conv.room_id) if e.get("sender") == bridge.bot_mxid]
        assert "cannot remove messages" in welcome[-1]["content"]["body"]
        assert "Logged in" in await login_fake(conv, "bob-remote")
        await conv.say("version")  # nothing more came in between
        told = [
            e
            for e in bob.history(conv.room_id)
            if "cannot remove messages" in str(e.get("content", {}).get("body"))
        ]
        assert len(told) == 1


async def test_portal_user_listing_still_reaches_a_plain_open_portal(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """A user joined to a portal (without the login that made it) sees it listed."""
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with alice, carol:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        await login(bridge, carol, uid("c"))
        await alice.invite(room_id, carol.user_id)
        await carol.join(room_id)
        assert room_id in await (await management_room(carol, bridge)).say("list-portals")


async def test_a_secret_put_in_by_an_edit_is_removed_too(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """An edit is not run as a command, but the token it adds stayed in the room's history."""
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await trusted_management_room(alice, bridge)
        secret = f"login-matrix {alice.access_token}"
        first = await alice.send_text(conv.room_id, "version")
        await conv.next_notice()
        edit = await alice.send_message(
            conv.room_id,
            {
                "msgtype": "m.text",
                "body": f"* {secret}",
                "m.new_content": {"msgtype": "m.text", "body": secret},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            },
        )
        await eventually(lambda: is_redacted(alice, conv.room_id, edit))
        assert "new message" in await conv.next_notice()
        user = await bridge.store.get_user(alice.user_id)
        assert user is None or not user.double_puppet  # and it was not run


async def test_a_password_sent_again_after_its_login_ended_is_not_echoed(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """After "Login failed", people type the password again: it is no command, and the bot's
    answer quoted it back into the room's history."""
    bridge.connectors["fake"].network.passwords["bob-remote"] = "right-pw"
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with bob:
        conv = await management_room(bob, bridge)
        assert "Login failed" in await login_fake(conv, "bob-remote", "wrong-pw")
        reply = await conv.say("right-pw")
        assert "not a command" in reply and "right-pw" not in reply


async def test_a_mistyped_secret_command_or_a_password_like_cancel_is_removed(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """`login-matrx <token>` is no command, but holds the token; and while a login asks for
    a password, a password that starts like `cancel` answers it (removed), not the command."""
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await trusted_management_room(alice, bridge)
        eid = await alice.send_text(conv.room_id, f"login-matrx {alice.access_token}")
        answer = await conv.next_notice()
        assert "Did you mean `login-matrix`?" in answer and alice.access_token not in answer
        await eventually(lambda: is_redacted(alice, conv.room_id, eid))
        user = await bridge.store.get_user(alice.user_id)
        assert user is None or not user.double_puppet  # not run
        # A space for its hyphen: `login` is a command, which would have run and kept it.
        eid = await alice.send_text(conv.room_id, f"login matrix {alice.access_token}")
        answer = await conv.next_notice()
        assert "Did you mean `login-matrix`?" in answer and alice.access_token not in answer
        await eventually(lambda: is_redacted(alice, conv.room_id, eid))
        # The same typo put in by an edit is removed too.
        first = await alice.send_text(conv.room_id, "version")
        await conv.next_notice()
        typo = f"login-matrx {alice.access_token}"
        edit = await alice.send_message(
            conv.room_id,
            {
                "msgtype": "m.text",
                "body": f"* {typo}",
                "m.new_content": {"msgtype": "m.text", "body": typo},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            },
        )
        await eventually(lambda: is_redacted(alice, conv.room_id, edit))
        assert "new message" in await conv.next_notice()
        bridge.connectors["fake"].network.passwords["alice-remote"] = "cancelled-pw"
        assert "username" in await conv.say("login fake")
        assert "password" in await conv.say("alice-remote")
        pw_id = await alice.send_text(conv.room_id, "cancelled-pw")
        assert "Logged in" in await conv.next_notice()
        await eventually(lambda: is_redacted(alice, conv.room_id, pw_id))


async def test_list_portals_answers_from_the_state_cache(
    bridge: Bridge, bridge_env: BridgeEnv, uid, monkeypatch
):
    """The portals a user is in are known from the membership events the bridge received:
    listing them asks the homeserver nothing per portal."""
    from urllib.parse import quote

    from mautrix.api import HTTPAPI
    from mautrix.types import Membership

    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with alice, carol:
        client = await login(bridge, alice, uid("a"))
        rooms = []
        for _ in range(3):
            chat = uid("chat")
            fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
            rooms.append(await open_portal(bridge, alice, client, chat))
        await login(bridge, carol, uid("c"))
        for room_id in rooms[:2]:
            await alice.invite(room_id, carol.user_id)
            await carol.join(room_id)

        async def seen() -> bool:  # the bridge received carol's joins
            store = bridge.matrix.state_store
            members = [await store.get_member(r, carol.user_id) for r in rooms[:2]]
            return all(m is not None and m.membership == Membership.JOIN for m in members)

        await eventually(seen)
        conv = await management_room(carol, bridge)
        calls: list[str] = []
        original = HTTPAPI.request

        async def counted(self: HTTPAPI, method: Any, path: Any, *args: Any, **kw: Any) -> Any:
            if "/state/m.room.member/" in str(path) or "/joined_members" in str(path):
                calls.append(str(path))
            return await original(self, method, path, *args, **kw)

        monkeypatch.setattr(HTTPAPI, "request", counted)
        for _ in range(2):
            answer = await conv.say("list-portals")
            assert all(r in answer for r in rooms[:2]) and rooms[2] not in answer, answer
        # At most the room carol was never in is asked about, once (its member list), and
        # none of the rooms the bridge saw her join.
        assert len(calls) <= 1 and all(quote(rooms[2]) in c for c in calls), calls
