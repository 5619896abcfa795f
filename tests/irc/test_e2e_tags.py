"""IRCv3 client-only tags through a real InspIRCd (ircv3_ctctags) and a real Synapse:
``+typing`` and ``+draft/react`` both ways."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridgekit.testing.matrix_client import MatrixTestClient
from bridges.irc.lines import Message
from bridges.irc.names import casefold
from tests.harness.inspircd import InspIRCd, IrcTestClient, require_inspircd
from tests.irc.e2e import body_is, channel_scene, connector, ghost, privmsg_from, record_sent_lines

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


def tagmsg_from(nick: str, tag: str, value: str | None = None):
    def check(m: Message) -> bool:
        return (
            m.command == "TAGMSG"
            and casefold(m.nick or "") == casefold(nick)
            and tag in m.tags
            and (value is None or m.tags[tag] == value)
        )

    return check


async def next_typing(
    alice: MatrixTestClient, room_id: str, typing: bool, user_id: str, timeout: float = 15
) -> dict[str, Any]:
    """The first ``m.typing`` from now on in which ``user_id`` is (or is not) typing."""
    seen = {id(e) for e in alice.history(room_id)}
    return await alice.wait_for_event(
        room_id,
        lambda e: (
            id(e) not in seen
            and e.get("type") == "m.typing"
            and (user_id in e.get("content", {}).get("user_ids", [])) == typing
        ),
        timeout,
    )


async def set_typing(alice: MatrixTestClient, room_id: str, typing: bool) -> None:
    body: dict[str, Any] = {"typing": typing}
    if typing:
        body["timeout"] = 30000
    await alice.request("PUT", f"/rooms/{room_id}/typing/{alice.user_id}", body)


async def round_trip(
    alice: MatrixTestClient, room_id: str, bob: IrcTestClient, puppet: str, text: str = "probe"
) -> None:
    """Alice speaks and bob hears it: transactions flow (Synapse drops typing while it thinks
    the appservice is down), and whatever alice did before has been handled."""
    await alice.send_text(room_id, text)
    await bob.wait_for(privmsg_from(puppet, text), 15)


async def test_typing_goes_both_ways_as_typing_tags(make_bridge, ircd, bridge_env, uid):
    assert "ircv3_ctctags" in ircd.modules  # the server offers message-tags
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        await round_trip(alice, room_id, bob, puppet)
        # Matrix -> IRC: "active" now, repeated every 3 s while typing, "done" at the end.
        loop = asyncio.get_running_loop()
        await set_typing(alice, room_id, True)
        first = await bob.wait_for(tagmsg_from(puppet, "+typing", "active"), 15)
        first_at = loop.time()
        assert casefold(first.params[0]) == casefold(channel)
        await bob.wait_for(tagmsg_from(puppet, "+typing", "active"), 10)
        assert loop.time() - first_at > 2.5  # at most once per 3 s
        await set_typing(alice, room_id, False)
        await bob.wait_for(tagmsg_from(puppet, "+typing", "done"), 15)
        # IRC -> Matrix: the ghost types, and stops on "done".
        typing_bob = ghost(bob.nick)
        await bob.send_line_tagged({"+typing": "active"}, "TAGMSG", channel)
        await next_typing(alice, room_id, True, typing_bob)
        await bob.send_line_tagged({"+typing": "done"}, "TAGMSG", channel)
        await next_typing(alice, room_id, False, typing_bob)
        # A lost "done": the ghost stops typing by itself after IRCv3's 6 s, on time (the
        # bridge ends it; Synapse's own expiry of the typing timeout can take up to 16 s).
        await bob.send_line_tagged({"+typing": "active"}, "TAGMSG", channel)
        await next_typing(alice, room_id, True, typing_bob)
        started = loop.time()
        await next_typing(alice, room_id, False, typing_bob, timeout=15)
        assert 3 < loop.time() - started < 10


async def test_reactions_go_both_ways_as_draft_react_tags(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        # IRC -> Matrix: bob reacts to alice's line by its msgid.
        await alice.send_text(room_id, "react to me")
        heard = await bob.wait_for(privmsg_from(puppet, "react to me"), 15)
        mine = await alice.wait_for_event(
            room_id, lambda e: body_is("react to me")(e) and e["sender"] == alice.user_id
        )
        tags = {"+draft/react": "👍", "+draft/reply": heard.tags["msgid"]}
        await bob.send_line_tagged(tags, "TAGMSG", channel)
        reaction = await alice.wait_for_event(
            room_id, lambda e: e.get("type") == "m.reaction", timeout=15
        )
        assert reaction["sender"] == ghost(bob.nick)
        relates = reaction["content"]["m.relates_to"]
        assert relates == {"rel_type": "m.annotation", "event_id": mine["event_id"], "key": "👍"}
        # Matrix -> IRC: alice reacts to bob's line; bob gets a TAGMSG naming its msgid.
        await bob.privmsg(channel, "and to me")
        said = await bob.wait_for(lambda m: m.command == "PRIVMSG" and m.nick == bob.nick, 5)
        theirs = await alice.wait_for_event(room_id, body_is("and to me"))
        await alice.react(room_id, theirs["event_id"], "🎉")
        got = await bob.wait_for(tagmsg_from(puppet, "+draft/react", "🎉"), 15)
        assert casefold(got.params[0]) == casefold(channel)
        assert got.tags["+draft/reply"] == said.tags["msgid"]


async def test_no_typing_tags_where_the_server_has_no_message_tags(
    make_bridge, bridge_env, uid, tmp_path, monkeypatch
):
    require_inspircd()
    plain = InspIRCd(tmp_path / "plain", flood_control=False)
    plain.modules = [m for m in plain.modules if m != "ircv3_ctctags"]
    await asyncio.to_thread(plain.start)
    try:
        async with channel_scene(make_bridge, plain, bridge_env, uid) as scene:
            alice, bob, _, room_id, puppet = scene
            client = next(iter(connector(scene.bridge).clients.values()))
            assert client.conn is not None and "message-tags" not in client.conn.caps
            written = record_sent_lines(client.conn, monkeypatch)
            await round_trip(alice, room_id, bob, puppet)
            await set_typing(alice, room_id, True)
            await asyncio.sleep(1)
            await set_typing(alice, room_id, False)
            await round_trip(alice, room_id, bob, puppet, "after typing")
            assert written and not [line for line in written if b"TAGMSG" in line]
    finally:
        await asyncio.to_thread(plain.stop)


async def test_a_reaction_to_any_line_of_a_split_message_lands_on_its_one_event(
    make_bridge, ircd, bridge_env, uid
):
    """A Matrix message of two lines goes out as two PRIVMSGs, each with its msgid
    (``MessageResult.extra_ids``): a reaction to the second line finds the one Matrix event."""
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        mine = await alice.send_text(room_id, "first line\nsecond line")
        await bob.wait_for(privmsg_from(puppet, "first line"), 15)
        second = await bob.wait_for(privmsg_from(puppet, "second line"), 15)
        tags = {"+draft/react": "👀", "+draft/reply": second.tags["msgid"]}
        await bob.send_line_tagged(tags, "TAGMSG", channel)
        reaction = await alice.wait_for_event(
            room_id, lambda e: e.get("type") == "m.reaction", timeout=15
        )
        relates = reaction["content"]["m.relates_to"]
        assert relates == {"rel_type": "m.annotation", "event_id": mine, "key": "👀"}
