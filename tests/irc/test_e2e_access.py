"""A channel's room shows no more than the channel lets its Matrix users see.

With ``follow_channel_access`` (the default), a user whose IRC connection the channel keeps
out (invite-only, a key, a ban, a KICK) is put out of the channel's room by the bridge bot
and told why in their management room; an INVITE or ``irc join`` brings them back. A Matrix
user put out of a room on Matrix leaves the channel on IRC, whoever the moderator is.
(``follow_channel_access: false`` keeps them in the room: see test_e2e_joins.py.)
"""

from __future__ import annotations

import pytest

from bridges.irc.names import casefold
from tests.conftest import eventually
from tests.helpers import management_room, notice_says, removed, room_with_bot
from tests.irc.e2e import (
    SERVER,
    alias,
    channel_scene,
    connector,
    is_puppet_join,
    privmsg_from,
)

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_refused_at_an_invite_only_channel_then_invited_back_through_irc_join(
    make_bridge, ircd, bridge_env, uid
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        bridge, alice, bob, channel = scene.bridge, scene.alice, scene.bob, scene.channel
        irc = connector(bridge)
        await bob.send_line("MODE", channel, "+i")
        await bob.wait_for(lambda m: m.command == "MODE" and "+i" in m.params, 15)
        conv = await management_room(alice, bridge)
        room_id = await alice.join(alias(channel))  # her puppet's JOIN gets 473
        kick = await alice.wait_for_event(room_id, removed(alice.user_id, "invite-only"), 30)
        assert kick["sender"] == bridge.bot_mxid and channel in kick["content"]["reason"]
        told = await conv.next_notice(timeout=20)
        assert "invite-only" in told and "removed" in told and f"irc join {channel}" in told
        client = irc.puppet_of_user(SERVER, alice.user_id)
        assert client is not None
        await eventually(lambda: casefold(channel) not in client.wanted)  # no rejoin loop

        # An INVITE on IRC is passed on; joining stays her choice.
        await bob.send_line("INVITE", client.nick, channel)
        invited = await conv.next_notice(timeout=20)
        assert bob.nick in invited and f"irc join {channel}" in invited
        assert "Joined" in await conv.say(f"irc join {channel}", timeout=30)
        await bob.wait_for(is_puppet_join(channel), 15)
        assert await alice.wait_for_invite(20) == (room_id, bridge.bot_mxid)
        await alice.join(room_id)
        await alice.send_text(room_id, "back in")
        await bob.wait_for(privmsg_from(client.nick, "back in"), 15)


async def test_a_kick_on_irc_puts_the_user_out_of_the_room_and_the_channel_is_forgotten(
    make_bridge, ircd, bridge_env, uid
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        bridge, alice, bob, channel, room_id, puppet = scene.bridge, *scene
        conv = await management_room(alice, bridge)
        await bob.send_line("KICK", channel, puppet, "behave")
        kick = await alice.wait_for_event(
            room_id, removed(alice.user_id, "was kicked from", bob.nick, "behave"), 30
        )
        assert kick["sender"] == bridge.bot_mxid
        told = await conv.next_notice(timeout=20)
        assert "was kicked from" in told and "behave" in told and f"irc join {channel}" in told
        # A reconnect does not walk back in: the channel was forgotten with the kick.
        client = connector(bridge).puppet_of_user(SERVER, alice.user_id)
        assert client is not None and client.conn is not None
        conn, seen = client.conn, len(bob.history)
        old = conn._proto  # the transport's protocol: a new one per connection
        assert "Reconnecting" in await conv.say("irc reconnect")
        await eventually(lambda: conn._proto is not old and conn.ready.is_set(), timeout=30)
        # The rejoins are written before the connection counts as ready, so a WHOIS sent now
        # is answered after any JOIN it made.
        answer = await conv.say(f"irc whois {client.nick}", timeout=20)
        assert casefold(channel) not in casefold(answer), answer
        assert not [m for m in bob.history[seen:] if m.command == "JOIN"]


async def test_a_matrix_kick_by_a_room_moderator_parts_the_kicked_users_connection(
    make_bridge, ircd, bridge_env, uid
):
    """In a plumbed room the moderator is a Matrix user without an IRC connection of their
    own: the kicked user's own connection leaves the channel."""
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        bridge, alice, bob, channel = scene.bridge, scene.alice, scene.bob, scene.channel
        carol = await bridge_env.synapse.register_user(uid("carol"))
        async with carol:
            room_id = await room_with_bot(bridge, alice)  # alice created it: she moderates
            await alice.send_text(room_id, f"!bridge irc {SERVER} {channel}")
            await alice.wait_for_event(room_id, notice_says("Bridged this room"), 20)
            await alice.invite(room_id, carol.user_id)
            await carol.join(room_id)
            await carol.send_text(room_id, "hello from carol")
            irc = connector(bridge)
            await eventually(lambda: irc.puppet_of_user(SERVER, carol.user_id) is not None)
            carol_nick = irc.puppet_of_user(SERVER, carol.user_id).nick
            await bob.wait_for(privmsg_from(carol_nick, "hello from carol"), 20)
            await alice.request(
                "POST", f"/rooms/{room_id}/kick", {"user_id": carol.user_id, "reason": "spam"}
            )
            part = await bob.wait_for(lambda m: m.command == "PART" and m.nick == carol_nick, 20)
            assert casefold(part.params[0]) == casefold(channel) and "spam" in part.trailing
