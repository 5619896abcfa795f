"""Backfill after downtime: what was said on IRC while the bridge was away reaches Matrix.

When a login connects, the connector asks the server ``CHATHISTORY AFTER <channel>
msgid=<last msgid bridged into the portal>`` and the runtime sends the answer into the portal room
from the right ghosts, with each line's IRC server-time as its ``origin_server_ts``. No ircd in
Debian offers chathistory, so here the bridge reaches the real InspIRCd through
:mod:`tests.irc.history_proxy`, which adds it the way a server would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import eventually
from tests.harness.inspircd import InspIRCd, IrcTestClient
from tests.irc.e2e import (
    CAPS,
    body_is,
    channel_scene,
    ghost,
    is_puppet_join,
    privmsg_from,
    start_bridge,
)
from tests.irc.history_proxy import HistoryProxy, HistoryRequest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
async def history(ircd: InspIRCd) -> AsyncIterator[HistoryProxy]:
    """The module's InspIRCd with chathistory, through the proxy."""
    proxy = HistoryProxy(ircd)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def ms(server_time: str) -> int:
    """An IRCv3 ``time`` tag as exact milliseconds since the epoch."""
    when = datetime.fromisoformat(server_time.replace("Z", "+00:00"))
    return (when - EPOCH) // timedelta(milliseconds=1)


def from_irc(user: MatrixTestClient, room_id: str) -> list[tuple[str, str, str, int]]:
    """(sender, msgtype, body, origin_server_ts) of every ghost's message in the room, in
    timeline order."""
    return [
        (e["sender"], e["content"]["msgtype"], e["content"]["body"], e["origin_server_ts"])
        for e in user.history(room_id)
        if e.get("type") == "m.room.message" and e["sender"].startswith("@_irc_")
    ]


def lines_from_irc(user: MatrixTestClient, room_id: str) -> list[str]:
    """The lines of every ghost's message in the room (a merged event counts each line)."""
    return [line for _, _, body, _ in from_irc(user, room_id) for line in body.split("\n")]


async def say(
    speaker: IrcTestClient, channel: str, text: str, command: str = "PRIVMSG"
) -> tuple[str, str, str, int]:
    """``speaker`` says ``text``; returns what Matrix should show for it (from the server's echo,
    which carries the msgid and server-time every member got)."""
    await speaker.send_line(command, channel, text)
    assert speaker.nick
    echo = await speaker.wait_for(privmsg_from(speaker.nick, text, command))
    msgtype = "m.notice" if command == "NOTICE" else "m.text"
    if text.startswith("\x01ACTION "):
        text, msgtype = text[len("\x01ACTION ") : -1], "m.emote"
    return ghost(speaker.nick), msgtype, text, ms(echo.tags["time"])


async def test_messages_said_while_the_bridge_was_down_arrive_when_it_is_back(
    make_bridge: Any, ircd: InspIRCd, history: HistoryProxy, bridge_env: Any, uid: Any
) -> None:
    via_proxy = {"host": history.host, "port": history.port}
    async with channel_scene(make_bridge, ircd, bridge_env, uid, **via_proxy) as scene:
        alice, bob, channel, room_id, puppet = scene
        carol = await scene.irc_user("carol")
        await history.keep_history(channel)

        # Bridged live: the portal's last message from IRC is this one.
        before = await say(bob, channel, "before the restart")
        await alice.wait_for_event(room_id, body_is(before[2]))
        before_msgid = history.history(channel)[-1].tags["msgid"]

        await make_bridge.stop(scene.bridge)
        await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == puppet, 15)

        missed = [
            await say(bob, channel, "while you were away"),
            await say(carol, channel, "\x01ACTION waves\x01"),
            await say(bob, channel, "a notice, too", "NOTICE"),
            await say(carol, channel, "last one before you are back"),
        ]

        await start_bridge(make_bridge, ircd, **via_proxy)
        await bob.wait_for(is_puppet_join(channel), 30)
        await alice.wait_for_event(room_id, body_is(missed[-1][2]), timeout=30)
        after = await say(bob, channel, "after the restart")
        await alice.wait_for_event(room_id, body_is(after[2]))

        # Each missed line once, in order, from its speaker's ghost, at its IRC server-time;
        # the live one before the restart not again.
        assert from_irc(alice, room_id) == [before, *missed, after]
        assert history.requests == [HistoryRequest(channel, before_msgid, len(missed))]


async def test_what_was_bridged_live_is_not_fetched_again_after_a_reconnect(
    make_bridge: Any, ircd: InspIRCd, history: HistoryProxy, bridge_env: Any, uid: Any
) -> None:
    via_proxy = {"host": history.host, "port": history.port}
    async with channel_scene(make_bridge, ircd, bridge_env, uid, **via_proxy) as scene:
        alice, bob, channel, room_id, puppet = scene
        await history.keep_history(channel)
        await say(bob, channel, "one")
        await alice.wait_for_event(room_id, body_is("one"))
        # A burst: the bridge may merge it into one event, whose remote id is its first line's.
        await say(bob, channel, "two")
        await say(bob, channel, "three")
        await eventually(lambda: lines_from_irc(alice, room_id) == ["one", "two", "three"])
        msgids = [m.tags["msgid"] for m in history.history(channel)]

        history.drop_clients()  # the bridge's connection breaks and comes back
        await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == puppet, 15)
        await bob.wait_for(is_puppet_join(channel), 30)
        await eventually(lambda: len(history.requests) >= 1, timeout=15)
        await say(bob, channel, "four")
        await eventually(lambda: "four" in lines_from_irc(alice, room_id))

        # Asked from the newest line bridged ("three", merged with "two" or not); nothing
        # already in the room comes again.
        (request,) = history.requests
        assert request.target == channel and request.after == msgids[-1]
        assert lines_from_irc(alice, room_id) == ["one", "two", "three", "four"]


async def test_the_proxy_answers_chathistory_like_a_server(
    ircd: InspIRCd, history: HistoryProxy, uid: Any
) -> None:
    """The test tool itself: caps, ISUPPORT, the batch format, msgids shared with every member."""
    channel = "#" + uid("chan")
    await history.keep_history(channel)
    async with IrcTestClient.connected(ircd.host, ircd.port, uid("bob"), CAPS) as bob:
        await bob.join(channel)
        client = IrcTestClient(history.host, history.port)
        await client.connect(uid("reader"), caps=[*CAPS, "batch", "draft/chathistory"])
        try:
            assert {"batch", "draft/chathistory", "server-time"} <= client.caps
            isupport = [p for m in client.history if m.command == "005" for p in m.params]
            assert "CHATHISTORY=100" in isupport
            await client.join(channel)
            said = [await say(bob, channel, f"line {i}") for i in range(3)]
            # InspIRCd gives each line one msgid: the sender's echo, another member and the
            # keeper all see the same.
            seen = [m for m in bob.history if m.command == "PRIVMSG"]
            live = [await client.wait_for(privmsg_from(bob.nick or "")) for _ in said]
            msgids = [m.tags["msgid"] for m in seen]
            assert [m.tags["msgid"] for m in live] == msgids
            assert [m.tags["msgid"] for m in history.history(channel)] == msgids
            first = msgids[0]

            await client.send_line("CHATHISTORY", "AFTER", channel, f"msgid={first}", "1")
            start = await client.wait_for(lambda m: m.command == "BATCH")
            assert start.params[1:] == ["chathistory", channel]
            line = await client.wait_for(lambda m: m.command == "PRIVMSG" and "batch" in m.tags)
            assert line.tags["batch"] == start.params[0][1:]
            assert line.tags["msgid"] == seen[1].tags["msgid"]
            assert ms(line.tags["time"]) == said[1][3]
            assert line.source == seen[1].source and line.params == [channel, "line 1"]
            end = await client.wait_for(lambda m: m.command == "BATCH")
            assert end.params == ["-" + start.params[0][1:]]

            await client.send_line("CHATHISTORY", "AFTER", channel, "msgid=nosuchid", "10")
            start = await client.wait_for(lambda m: m.command == "BATCH")
            end = await client.wait_for(lambda m: m.command == "BATCH")  # empty
            assert end.params == ["-" + start.params[0][1:]]

            await client.send_line("CHATHISTORY", "LATEST", channel, "*", "10")
            fail = await client.wait_for(lambda m: m.command == "FAIL")
            assert fail.params[:3] == ["CHATHISTORY", "UNKNOWN_COMMAND", "LATEST"]
        finally:
            await client.close()
