"""``start-chat irc <nick>`` (alias ``pm``, and the older ``irc pm``): a DM portal with an
IRC user's ghost, opened from Matrix, and the clear answers for what it cannot open."""

from __future__ import annotations

import pytest

from tests.helpers import management_room
from tests.irc.e2e import body_is, connector, ghost, irc_networks, irc_user, privmsg_from

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_start_chat_opens_a_dm_with_an_irc_user_both_ways(make_bridge, ircd, bridge_env, uid):
    networks = {**irc_networks(ircd), "fake": {"enabled": True}}
    bridge = await make_bridge(networks=networks)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await irc_user(ircd, uid("bob"))
    async with alice:
        try:
            conv = await management_room(alice, bridge)
            # No IRC connection yet: start-chat makes one, checks the nick, opens the room.
            answer = await conv.say(f"start-chat irc {bob.nick}", timeout=40)
            assert "Chat with" in answer and ghost(bob.nick) in answer, answer
            room_id, _ = await alice.wait_for_invite(20)
            assert room_id in answer
            await alice.join(room_id)
            puppet = next(iter(connector(bridge).clients.values())).nick
            await alice.send_text(room_id, "hello bob")
            got = await bob.wait_for(privmsg_from(puppet, "hello bob"), 15)
            assert got.params[0] == bob.nick
            await bob.privmsg(puppet, "hi alice")
            evt = await alice.wait_for_event(room_id, body_is("hi alice"))
            assert evt["sender"] == ghost(bob.nick)

            # The same chat again, by the alias and by the old command: the same room.
            assert room_id in await conv.say(f"pm irc {bob.nick.upper()}", timeout=20)
            assert room_id in await conv.say(f"irc pm {bob.nick}", timeout=20)
            assert len(connector(bridge).clients) == 1  # one connection, reused

            # What it cannot open gets an answer, and no room.
            answer = await conv.say(f"start-chat irc nobody{uid('x')}", timeout=20)
            assert "There is no irc user" in answer, answer
            answer = await conv.say("start-chat irc bad,nick", timeout=20)
            assert "not a valid irc identifier" in answer, answer
            answer = await conv.say(f"start-chat irc {puppet}", timeout=20)
            assert "your own nick" in answer, answer
            answer = await conv.say("start-chat irc nosuchserver/bob")
            assert "no IRC server" in answer, answer
            answer = await conv.say("start-chat gopher bob")
            assert "no network `gopher`" in answer and "irc" in answer, answer
            answer = await conv.say("start-chat fake bob")
            assert "cannot start chats" in answer, answer
            assert "Usage" in await conv.say("start-chat irc")
        finally:
            await bob.close()
