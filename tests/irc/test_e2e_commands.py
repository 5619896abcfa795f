"""Management-room commands of the IRC connector."""

from __future__ import annotations

from bridges.irc.names import casefold
from tests.helpers import management_room
from tests.irc.e2e import alias, connector, irc_user, is_puppet_join, start_bridge


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
            stored = await bridge.get_kv(f"irc:pass:{login_id}")
            assert stored and "s3cret-pw" not in stored
            assert await connector(bridge).load_password(login_id) == "s3cret-pw"
            # reconnect: quits and comes back with the same nick, rejoining the channel
            assert "Reconnecting" in await conv.say("irc reconnect")
            await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == new_nick, 15)
            back = await bob.wait_for(lambda m: m.command == "JOIN" and m.nick == new_nick, 30)
            assert casefold(back.params[0]) == casefold(channel)
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
