"""Management-room commands of the IRC connector."""

from __future__ import annotations

from bridges.irc.names import casefold
from tests.conftest import eventually
from tests.helpers import give_power, management_room
from tests.irc.e2e import (
    SERVER,
    alias,
    body_is,
    connector,
    irc_user,
    is_puppet_join,
    member_event,
    start_bridge,
)
from tests.test_e2e_command_safety import is_redacted, trusted_management_room


async def test_irc_commands_in_the_management_room(make_bridge, ircd, bridge_env, uid):
    bridge = await start_bridge(make_bridge, ircd)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    async with alice:
        try:
            conv = await management_room(alice, bridge)
            help_text = await conv.say("help")
            for sub in ("nick", "join", "whois", "storepass", "reconnect", "quit"):
                assert f"irc {sub}" in help_text
            # join: the puppet joins, the user is invited to the portal
            answer = await conv.say(f"irc join {channel}", timeout=30)
            assert "Joined" in answer and alias(channel) in answer
            joined = await bob.wait_for(is_puppet_join(channel), 15)
            room_id, _ = await alice.wait_for_invite(20)
            await alice.join(room_id)
            # nick
            new_nick = uid("Ally")
            assert new_nick in await conv.say(f"irc nick {new_nick}", timeout=20)
            nick = await bob.wait_for(lambda m: m.command == "NICK", 15)
            assert nick.nick == joined.nick and nick.params[0] == new_nick
            # whois
            answer = await conv.say(f"irc whois {bob.nick}", timeout=20)
            assert bob.nick in answer and channel in answer
            # storepass: encrypted at rest, readable by the bridge
            assert "stored" in await conv.say("irc storepass s3cret-pw")
            login_id = next(iter(connector(bridge).clients))
            stored = (await connector(bridge).state.get(login_id)).password
            assert stored and "s3cret-pw" not in stored
            assert await connector(bridge).load_password(login_id) == "s3cret-pw"
            # reconnect: quits and comes back with the same nick, rejoining the channel
            assert "Reconnecting" in await conv.say("irc reconnect")
            await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == new_nick, 15)
            back = await bob.wait_for(lambda m: m.command == "JOIN" and m.nick == new_nick, 30)
            assert casefold(back.params[0]) == casefold(channel)
            # No SASL and no services_mask on this server: the password stays unsent, said once.
            await alice.wait_for_event(
                conv.room_id,
                lambda e: "password was not sent" in e.get("content", {}).get("body", ""),
                30,
            )
            # quit
            assert "Disconnected" in await conv.say("irc quit")
            await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == new_nick, 15)
            assert not connector(bridge).clients
        finally:
            await bob.close()


async def test_login_flow_and_relay_only_server(make_bridge, ircd, bridge_env, uid):
    """relay_only: no per-user connections; a logged-in user's connection relays the others."""
    bridge = await start_bridge(make_bridge, ircd, relay_only=True)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    guest = await bridge_env.synapse.register_user(uid("guest"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    relay_nick = uid("Relay")
    async with admin, guest:
        try:
            conv = await management_room(admin, bridge)
            assert "nick" in await conv.say("login irc")
            assert "password" in await conv.say(relay_nick)
            assert "Logged in" in await conv.say("-")
            room_id = await admin.join(alias(channel))
            joined = await bob.wait_for(lambda m: m.command == "JOIN" and m.nick == relay_nick, 30)
            assert casefold(joined.params[0]) == casefold(channel)
            await give_power(bridge, room_id, admin.user_id, 50)  # set-relay: moderators
            await admin.send_text(room_id, "!set-relay")
            await admin.wait_for_event(
                room_id, lambda e: "relayed" in e.get("content", {}).get("body", "")
            )
            await guest.join(room_id)
            await guest.send_text(room_id, "hello via the relay")
            got = await bob.wait_for(lambda m: m.command == "PRIVMSG" and m.nick == relay_nick, 15)
            assert got.trailing == f"<{guest.user_id[1:].split(':')[0]}> hello via the relay"
            assert len(connector(bridge).clients) == 1  # the guest got no connection of its own
        finally:
            await bob.close()


async def test_a_channel_key_is_the_users_own_kept_encrypted_and_follows_the_operator(
    make_bridge, ircd, bridge_env, uid
):
    """A key is a secret of the channel: the bridge joins with it only for users who gave
    it; being let into the Matrix room does not let anyone past +k on IRC."""
    bridge = await start_bridge(make_bridge, ircd)
    irc = connector(bridge)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    channel = "#" + uid("chan")
    folded = casefold(channel)
    bob = await irc_user(ircd, uid("bob"), channel)  # first in: the channel's operator

    async def set_modes(*modes: str) -> None:
        await bob.send_line("MODE", channel, *modes)
        await bob.wait_for(lambda m: m.command == "MODE" and m.param(1) == modes[0], 10)

    def keys_of(user: str) -> dict[str, str]:
        client = irc.puppet_of_user(SERVER, user)
        return client.keys if client else {}

    async with alice, carol:
        try:
            await set_modes("+k", "sesame")
            conv = await management_room(alice, bridge)
            assert "Could not join" in await conv.say(f"irc join {channel}", timeout=30)
            assert "Could not join" in await conv.say(f"irc join {channel} wrong", timeout=30)
            assert folded not in keys_of(alice.user_id)  # a refused key is not kept
            assert "Joined" in await conv.say(f"irc join {channel} sesame", timeout=30)
            alice_nick = (await bob.wait_for(is_puppet_join(channel), 15)).nick
            alice_login = irc.puppet_of_user(SERVER, alice.user_id).login.id
            stored = (await irc.state.get(alice_login)).channel_keys
            assert stored and "sesame" not in stored  # encrypted at rest
            assert await irc.load_channel_keys(alice_login) == {folded: "sesame"}
            room_id, _ = await alice.wait_for_invite(20)
            await alice.join(room_id)
            rules = await alice.get_state(room_id, "m.room.join_rules")
            assert rules["join_rule"] == "invite"  # a keyed channel: no one walks in

            # carol is let into the room, but not past the key: the channel keeps her
            # puppet out, so the room puts her out too, and she is told how to give it
            async def newcomers_see_only_what_follows() -> bool:
                seen = await alice.get_state(room_id, "m.room.history_visibility")
                return seen.get("history_visibility") == "joined"

            await eventually(newcomers_see_only_what_follows)
            await bob.privmsg(channel, "said before carol came")
            await alice.wait_for_event(room_id, body_is("said before carol came"), 15)
            carol_conv = await management_room(carol, bridge)
            await alice.invite(room_id, carol.user_id)
            assert (await carol.wait_for_invite(20))[0] == room_id
            await carol.join(room_id)
            # a keyed channel's room shows a newcomer nothing said before they joined
            seen = [e.get("content", {}).get("body") for e in await carol.messages(room_id)]
            assert "said before carol came" not in seen
            kicked = await alice.wait_for_event(room_id, member_event(carol.user_id, "leave"), 30)
            assert kicked["sender"] == bridge.bot_mxid
            assert "channel key" in kicked["content"]["reason"]
            assert folded not in keys_of(carol.user_id)
            told = await carol_conv.next_notice(timeout=20)
            assert "channel key" in told and channel in told and "removed" in told
            answer = await carol_conv.say(f"irc join {channel} sesame", timeout=30)
            assert "Joined" in answer, answer
            # the key opens the room again: she is invited back
            assert await carol.wait_for_invite(20) == (room_id, bridge.bot_mxid)
            await carol.join(room_id)
            carol_nick = (await bob.wait_for(is_puppet_join(channel), 15)).nick
            assert carol_nick != alice_nick

            # the operator changes the key: each user's connection keeps up and rejoins with it
            await set_modes("-k", "sesame")
            await set_modes("+k", "door-2")
            for user in (alice.user_id, carol.user_id):
                await eventually(lambda user=user: keys_of(user).get(folded) == "door-2")
            assert "Reconnecting" in await conv.say("irc reconnect")
            await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == alice_nick, 15)
            await bob.wait_for(lambda m: m.command == "JOIN" and m.nick == alice_nick, 30)
            await set_modes("-k", "door-2")
            await eventually(lambda: folded not in keys_of(alice.user_id))

            async def no_stored_keys() -> bool:
                return (await irc.state.get(alice_login)).channel_keys is None

            await eventually(no_stored_keys)
            # a key cannot smuggle a second parameter or line into the JOIN
            for bad in ("a,b", "x\rQUIT", ":x"):
                answer = await conv.say(f'irc join {channel} "{bad}"', timeout=20)
                assert "Not a valid" in answer, answer
        finally:
            await bob.close()


async def test_irc_secrets_are_refused_in_a_portal_and_removed(make_bridge, ircd, bridge_env, uid):
    """`!irc storepass` (a password) or `!irc join <#chan> <key>` in a portal would show the
    secret to the whole room: refused, redacted (the bot made the room), nothing stored."""
    bridge = await start_bridge(make_bridge, ircd)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    async with alice:
        try:
            room_id = await alice.join(alias(channel))
            seen: set[str] = set()

            def refusal(e: dict) -> bool:
                body = str(e.get("content", {}).get("body"))
                return "only works in your management room" in body and e["event_id"] not in seen

            for text in ("!irc storepass hunter2", f"!irc join {channel}x k3y"):
                eid = await alice.send_text(room_id, text)
                seen.add((await alice.wait_for_event(room_id, refusal))["event_id"])

                async def redacted(eid: str = eid) -> bool:
                    evt = await alice.request("GET", f"/rooms/{room_id}/event/{eid}")
                    return evt.get("content") == {}

                await eventually(redacted)
            for login_id in connector(bridge).clients:
                assert await connector(bridge).load_password(login_id) is None
            # Without a key, `irc join` carries no secret and still works in a portal.
            await alice.send_text(room_id, f"!irc join {channel}y")
            await alice.wait_for_event(room_id, lambda e: "Joined" in str(e.get("content")))
        finally:
            await bob.close()


async def test_list_portals_does_not_show_a_secret_channel_to_outsiders(
    make_bridge, ircd, bridge_env, uid
):
    """A +s channel's portal (its name, its room id) is listed to its members only: not to
    another IRC user of the bridge who is in it on neither side."""
    bridge = await start_bridge(make_bridge, ircd)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    mallory = await bridge_env.synapse.register_user(uid("mallory"))
    secret = "#" + uid("secret")
    bob = await irc_user(ircd, uid("bob"), secret)
    async with alice, mallory:
        try:
            await bob.send_line("MODE", secret, "+s")
            await bob.wait_for(lambda m: m.command == "MODE" and m.param(1) == "+s", 10)
            conv = await management_room(alice, bridge)
            assert "Joined" in await conv.say(f"irc join {secret}", timeout=30)
            room_id, _ = await alice.wait_for_invite(20)
            await alice.join(room_id)
            assert room_id in await conv.say("list-portals")
            outsider = await management_room(mallory, bridge)
            assert "Joined" in await outsider.say(f"irc join #{uid('other')}", timeout=30)
            listing = await outsider.say("list-portals")
            assert room_id not in listing and casefold(secret) not in listing
        finally:
            await bob.close()


async def test_a_mistyped_secret_command_is_removed_and_corrected(
    make_bridge, ircd, bridge_env, uid
):
    """`irc storepas <password>` holds the password as surely as `irc storepass`: removed
    (in the management room and in a portal), not run, and the user told what it meant."""
    bridge = await start_bridge(make_bridge, ircd)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    async with alice:
        try:
            conv = await trusted_management_room(alice, bridge)
            for typo in ("irc storepas hunter2", "ric storepass hunter2"):
                eid = await alice.send_text(conv.room_id, typo)
                answer = await conv.next_notice()
                assert "Did you mean `irc storepass`?" in answer, answer
                assert "removed because it may hold a secret" in answer
                assert "hunter2" not in answer
                await eventually(lambda eid=eid: is_redacted(alice, conv.room_id, eid))
            # A plain typo is no secret: answered as before, and it stays.
            plain = await alice.send_text(conv.room_id, "irc whoos bob")
            assert "Unknown subcommand" in await conv.next_notice()
            assert not await is_redacted(alice, conv.room_id, plain)
            for login_id in connector(bridge).clients:
                assert await connector(bridge).load_password(login_id) is None
            # In a portal (others read it): removed and pointed to the management room.
            room_id = await alice.join(alias(channel))
            eid = await alice.send_text(room_id, "!irc stroepass hunter3")
            notice = await alice.wait_for_event(
                room_id, lambda e: "Did you mean" in str(e.get("content", {}).get("body"))
            )
            assert "management room" in notice["content"]["body"]
            await eventually(lambda: is_redacted(alice, room_id, eid))
        finally:
            await bob.close()
