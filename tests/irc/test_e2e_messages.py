"""IRC <-> Matrix messages through a real InspIRCd and a real Synapse."""

from __future__ import annotations

import asyncio

from tests.conftest import BridgeEnv
from tests.irc.e2e import body_is, channel_scene, ghost, privmsg_from


async def test_messages_both_ways_in_an_alias_portal(make_bridge, ircd, bridge_env: BridgeEnv, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, bob_name="Bob") as scene:
        alice, bob, channel, room_id, puppet = scene
        assert puppet.lower().startswith(alice.user_id[1:].split(":")[0].lower())
        assert puppet.endswith("[m]")
        await bob.privmsg(channel, "hello from IRC")
        evt = await alice.wait_for_event(room_id, body_is("hello from IRC"))
        assert evt["sender"] == ghost(bob.nick)
        profile = await alice.get_profile(ghost(bob.nick))
        assert profile["displayname"] == bob.nick
        await alice.send_text(room_id, "hello from Matrix")
        await bob.wait_for(privmsg_from(puppet, "hello from Matrix"), 15)


async def test_emote_notice_and_formatting_both_ways(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        # IRC -> Matrix
        await bob.privmsg(channel, "\x01ACTION waves\x01")
        evt = await alice.wait_for_event(room_id, body_is("waves"))
        assert evt["content"]["msgtype"] == "m.emote"
        await bob.send_line("NOTICE", channel, "a notice")
        evt = await alice.wait_for_event(room_id, body_is("a notice"))
        assert evt["content"]["msgtype"] == "m.notice"
        await bob.privmsg(channel, "\x02bold\x02 and \x1ditalic\x1d \x0304red\x03")
        evt = await alice.wait_for_event(room_id, body_is("bold and italic red"))
        html = evt["content"]["formatted_body"]
        assert "<strong>bold</strong>" in html or "<b>bold</b>" in html
        assert "<em>italic</em>" in html or "<i>italic</i>" in html
        assert "red" in html and "color" in html
        # Matrix -> IRC
        await alice.send_message(room_id, {"msgtype": "m.emote", "body": "dances"})
        await bob.wait_for(privmsg_from(puppet, "\x01ACTION dances\x01"), 15)
        await alice.send_message(room_id, {"msgtype": "m.notice", "body": "matrix notice"})
        await bob.wait_for(privmsg_from(puppet, "matrix notice", "NOTICE"), 15)
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "**strong** _em_",
                "format": "org.matrix.custom.html",
                "formatted_body": "<strong>strong</strong> <em>em</em>",
            },
        )
        got = await bob.wait_for(privmsg_from(puppet), 15)
        assert (got.trailing or "").startswith("\x02strong\x02 \x1dem")


async def test_mentions_become_pills_and_replies_become_nick_prefixes(
    make_bridge, ircd, bridge_env, uid
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, open_portal=False) as scene:
        carol = await scene.irc_user("carol")  # in the channel before alice's puppet
        await scene.open()
        alice, bob, channel, room_id, puppet = scene
        bridge = scene.bridge
        await carol.wait_for(lambda m: m.command == "JOIN" and m.nick == puppet, 15)
        # IRC user mentions the Matrix user's puppet and another IRC user.
        text = f"{puppet}: meet {carol.nick}"
        await bob.privmsg(channel, text)
        evt = await alice.wait_for_event(room_id, body_is(text))
        html = evt["content"]["formatted_body"]
        assert f'href="https://matrix.to/#/{alice.user_id}"' in html
        assert f'href="https://matrix.to/#/{ghost(carol.nick)}"' in html
        assert alice.user_id in evt["content"]["m.mentions"]["user_ids"]
        # Matrix reply: "nick: text", no quoted fallback, +draft/reply tag with the msgid.
        await bob.privmsg(channel, "question?")
        question = await alice.wait_for_event(room_id, body_is("question?"))
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": f"> <{ghost(bob.nick)}> question?\n\nanswer",
                "format": "org.matrix.custom.html",
                "formatted_body": ("<mx-reply><blockquote>question?</blockquote></mx-reply>answer"),
                "m.relates_to": {"m.in_reply_to": {"event_id": question["event_id"]}},
            },
        )
        got = await bob.wait_for(privmsg_from(puppet), 15)
        assert got.trailing == f"{bob.nick}: answer"
        row = await bridge.store.message_by_event(question["event_id"])
        assert row is not None and got.tags.get("+draft/reply") == row.remote_id
        # A pill in Matrix HTML becomes the ghost's IRC nick.
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "carol: hi",
                "format": "org.matrix.custom.html",
                "formatted_body": (f'<a href="https://matrix.to/#/{ghost(carol.nick)}">C</a>: hi'),
            },
        )
        got = await bob.wait_for(privmsg_from(puppet), 15)
        assert got.trailing == f"{carol.nick}: hi"


async def test_long_messages_split_and_pastes_become_a_link(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, line_limit=3) as scene:
        alice, bob, channel, room_id, puppet = scene
        bridge = scene.bridge
        words = [f"wörd{i}" for i in range(140)]  # ~1000 bytes, multi-byte characters
        await alice.send_text(room_id, " ".join(words))
        got = []
        while len(" ".join(got).split()) < len(words):
            got.append((await bob.wait_for(privmsg_from(puppet), 15)).trailing)
        assert 2 <= len(got) <= 3
        assert " ".join(got).split() == words  # split on word boundaries, nothing lost
        # As relayed by the server, with its source prefix, every line fits in 512 bytes.
        relayed = [f":{puppet}!matrix@127.0.0.1 PRIVMSG {channel} :{x}\r\n" for x in got]
        assert all(len(line.encode()) <= 512 for line in relayed)
        paste = "\n".join(f"line {i}" for i in range(10))
        await alice.send_text(room_id, paste)
        link_line = (await bob.wait_for(privmsg_from(puppet), 15)).trailing
        assert link_line.startswith("line 0") and "/_bridgekit/media/" in link_line
        url = link_line.split("full message: ", 1)[1].rstrip(")")
        session = bridge.matrix.session
        async with session.get(url) as resp:
            assert resp.status == 200
            assert (await resp.text()) == paste
        await alice.send_text(room_id, "after the paste")
        assert (await bob.wait_for(privmsg_from(puppet), 15)).trailing == "after the paste"


async def test_echo_message_confirms_and_is_not_posted_twice(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        bridge = scene.bridge
        event_id = await alice.send_text(room_id, "only once")
        got = await bob.wait_for(privmsg_from(puppet, "only once"), 15)
        await bob.privmsg(channel, "marker")
        await alice.wait_for_event(room_id, body_is("marker"))
        bodies = [
            e["content"].get("body")
            for e in alice.history(room_id)
            if e["type"] == "m.room.message"
        ]
        assert bodies.count("only once") == 1
        row = await bridge.store.message_by_event(event_id)
        # The echo's msgid is the remote id: replies from IRC can find the message.
        assert row is not None and row.remote_id == got.tags.get("msgid")


async def test_edit_is_sent_as_a_short_correction(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        event_id = await alice.send_text(room_id, "i like teh cats")
        await bob.wait_for(privmsg_from(puppet, "i like teh cats"), 15)
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* i like the cats",
                "m.new_content": {"msgtype": "m.text", "body": "i like the cats"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
            },
        )
        assert (await bob.wait_for(privmsg_from(puppet), 15)).trailing == "* the"


async def test_private_messages_both_ways_become_a_dm_portal(make_bridge, ircd, bridge_env, uid):
    async with channel_scene(make_bridge, ircd, bridge_env, uid, bob_name="Bob") as scene:
        alice, bob, channel, room_id, puppet = scene
        await bob.privmsg(puppet, "psst, private")
        dm_room, inviter = await alice.wait_for_invite(20)
        await alice.join(dm_room)
        evt = await alice.wait_for_event(dm_room, body_is("psst, private"))
        assert evt["sender"] == ghost(bob.nick)
        await alice.send_text(dm_room, "private answer")
        got = await bob.wait_for(privmsg_from(puppet, "private answer"), 15)
        assert got.params[0] == bob.nick


async def test_a_paste_from_irc_reaches_matrix_in_one_or_two_events_in_order(
    make_bridge, ircd, bridge_env, uid
):
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        # A long hold, so that a paste split by each send's timing would show.
        scene.bridge.stream_hold.hold = 3.0
        await bob.privmsg(channel, "warm-up")  # bob's ghost is set up; the room is idle
        await alice.wait_for_event(room_id, body_is("warm-up"))
        await asyncio.sleep(0.3)
        lines = [f"paste line {i}" for i in range(9)]  # under the ircd's flood threshold
        for line in lines:  # a client pasting: lines 50 ms apart
            await bob.privmsg(channel, line)
            await asyncio.sleep(0.05)
        await alice.wait_for_event(
            room_id, lambda e: "paste line 8" in e.get("content", {}).get("body", "")
        )
        events = await alice.messages(room_id, limit=40)
        bodies = [
            e["content"]["body"]
            for e in events
            if e.get("sender") == ghost(bob.nick)
            and e["type"] == "m.room.message"
            and e["content"]["body"].startswith("paste")
        ]
        assert "\n".join(bodies).split("\n") == lines
        assert bodies[0] == "paste line 0"  # the first line is not held
        assert len(bodies) <= 3, bodies  # one send per line finishing would make 5-9
