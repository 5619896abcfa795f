"""Channels the IRC server will not let a bridged user into (+i, +b, +k, +l...)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import eventually
from tests.helpers import management_room
from tests.irc.e2e import (
    alias,
    channel_scene,
    connector,
    is_puppet_join,
    privmsg_from,
    record_sent_lines,
)

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


def bot_notice(bot: str, *words: str):
    def check(e: dict[str, Any]) -> bool:
        body = e.get("content", {}).get("body", "")
        return e.get("sender") == bot and all(w in body for w in words)

    return check


async def test_a_refused_join_is_reported_and_later_messages_are_refused_not_lost(
    make_bridge, ircd, bridge_env, uid
):
    """With ``follow_channel_access: false`` the user stays in the room, told why."""
    async with channel_scene(
        make_bridge, ircd, bridge_env, uid, open_portal=False, follow_channel_access=False
    ) as scene:
        bridge, alice, bob, channel = scene.bridge, scene.alice, scene.bob, scene.channel
        await bob.send_line("MODE", channel, "+i")
        await bob.wait_for(lambda m: m.command == "MODE" and "+i" in m.params, 15)
        conv = await management_room(alice, bridge)
        room_id = await alice.join(alias(channel))  # the puppet's JOIN gets 473
        # Told in the portal room, by the bridge bot...
        notice = await alice.wait_for_event(
            room_id, bot_notice(bridge.bot_mxid, f"could not join {channel} on"), timeout=30
        )
        assert "invite-only" in notice["content"]["body"]
        # ...and in the management room, not only as an answer to `irc join`.
        told = await conv.next_notice(timeout=20)
        assert "could not join" in told and channel in told and "invite-only" in told
        # A message to the room is refused at once (no JOIN per message, no echo wait).
        loop = asyncio.get_running_loop()
        started = loop.time()
        await alice.send_text(room_id, "let me in")
        refused = await alice.wait_for_event(
            room_id, bot_notice(bridge.bot_mxid, "your message was not delivered"), 15
        )
        assert "invite-only" in refused["content"]["body"]
        assert loop.time() - started < 5
        joins_refused = [
            e
            for e in alice.history(room_id)
            if bot_notice(bridge.bot_mxid, f"could not join {channel} on")(e)
        ]
        assert len(joins_refused) == 1  # said once, not once per attempt
        # An INVITE lets the puppet in, and the room works again.
        client = next(iter(connector(bridge).clients.values()))
        await bob.send_line("INVITE", client.nick, channel)
        await bob.wait_for(is_puppet_join(channel), 15)
        await alice.send_text(room_id, "thanks for the invite")
        await bob.wait_for(privmsg_from(client.nick, "thanks for the invite"), 15)


async def test_irc_join_of_a_refused_channel_answers_once(make_bridge, ircd, bridge_env, uid):
    """`irc join` answers a refusal itself: no second notice in the management room."""
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        bridge, alice, bob, channel = scene.bridge, scene.alice, scene.bob, scene.channel
        await bob.send_line("MODE", channel, "+k", "sesame")
        await bob.wait_for(lambda m: m.command == "MODE" and "+k" in m.params, 15)
        conv = await management_room(alice, bridge)
        answer = await conv.say(f"irc join {channel}", timeout=30)
        assert "Could not join" in answer
        await conv.say("ping")  # anything sent after the refusal comes before this answer
        notices = [
            e["content"]["body"]
            for e in alice.history(conv.room_id)
            if e.get("sender") == bridge.bot_mxid and channel in e["content"].get("body", "")
        ]
        assert len(notices) == 1, notices


async def test_after_a_kick_and_ban_messages_are_refused_without_a_join_per_message(
    make_bridge, ircd, bridge_env, uid, monkeypatch
):
    """With ``follow_channel_access: false`` the user stays in the room after a kick."""
    async with channel_scene(
        make_bridge, ircd, bridge_env, uid, follow_channel_access=False
    ) as scene:
        alice, bob, channel, room_id, puppet = scene
        bot = scene.bridge.bot_mxid
        client = next(iter(connector(scene.bridge).clients.values()))
        assert client.conn is not None
        written = record_sent_lines(client.conn, monkeypatch)
        await bob.send_line("MODE", channel, "+b", f"{puppet}!*@*")
        await bob.send_line("KICK", channel, puppet, "out")
        await bob.wait_for(lambda m: m.command == "KICK", 15)
        # The puppet's connection may read the KICK a moment after bob sees it (a read pause
        # after the MODE line): until then the bridge still takes it for a member, and a line
        # sent then is refused by the server (+n) instead of by the ban. Wait for the KICK.
        await eventually(lambda: client.fold(channel) not in client.channels, timeout=10)
        # Speaking again tries to rejoin once; the ban is reported and the line refused.
        await alice.send_text(room_id, "am I still here?")
        banned = await alice.wait_for_event(
            room_id, bot_notice(bot, f"could not join {channel} on"), 20
        )
        assert "banned" in banned["content"]["body"]
        await alice.wait_for_event(room_id, bot_notice(bot, "your message was not delivered"), 15)
        # The next line is refused at once, without another JOIN.
        await alice.send_text(room_id, "and now?")

        def refusals() -> list[dict[str, Any]]:
            notice = bot_notice(bot, "your message was not delivered")
            return [e for e in alice.history(room_id) if notice(e)]

        await eventually(lambda: len(refusals()) == 2, timeout=15)
        assert "banned" in refusals()[1]["content"]["body"]
        joins = [line for line in written if line.startswith(b"JOIN")]
        assert len(joins) == 1, joins
        assert not [m for m in bob.history if m.command == "PRIVMSG" and m.nick == puppet]


async def test_a_room_made_by_irc_join_has_its_alias_and_follows_its_channel_closing(
    make_bridge, ircd, bridge_env, uid
):
    """A channel's room is open to anyone while the channel is, and invite-only while the
    channel is (+i, +k): otherwise whoever found the room could read a closed channel."""
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        bridge, alice, bob, channel = scene.bridge, scene.alice, scene.bob, scene.channel
        carol = await bridge_env.synapse.register_user(uid("carol"))
        async with carol:
            conv = await management_room(alice, bridge)
            assert alias(channel) in await conv.say(f"irc join {channel}", timeout=30)
            room_id, _ = await alice.wait_for_invite(20)
            await alice.join(room_id)
            # The alias the answer gave works for anyone: the room of an open channel.
            assert await carol.join(alias(channel)) == room_id

            async def join_rule_is(rule: str) -> bool:
                state = await alice.get_state(room_id, "m.room.join_rules")
                if state.get("join_rule") != rule:
                    return False
                # Closed: whoever is let in later sees only what is said after they join.
                seen = await alice.get_state(room_id, "m.room.history_visibility")
                return seen.get("history_visibility") == (
                    "shared" if rule == "public" else "joined"
                )

            assert await join_rule_is("public")
            for modes, rule in (
                (("+i",), "invite"),
                (("-i",), "public"),
                (("+k", "sesame"), "invite"),
                (("-k", "sesame"), "public"),
            ):
                await bob.send_line("MODE", channel, *modes)
                await eventually(lambda rule=rule: join_rule_is(rule), 20)
