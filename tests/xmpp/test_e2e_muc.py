"""MUC portals end to end: real Synapse, real Prosody, real slixmpp clients."""

from __future__ import annotations

import pytest

from bridgekit.testing.matrix_client import MatrixError
from tests.conftest import BridgeEnv
from tests.harness.prosody import Prosody
from tests.xmpp.conftest import alias, body_is, ghost

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def open_muc_portal(bridge, prosody: Prosody, bridge_env: BridgeEnv, xmpp_clients, uid):
    """Bob (XMPP) in a new room, Alice (Matrix) joined through its alias; returns all four."""
    bob = await xmpp_clients(prosody, uid("bob"))
    room = f"{uid('room')}@{prosody.muc}"
    await bob.join(room, "Bob")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    room_id = await alice.join(alias(room))
    # Alice's occupant appears in the room.
    joined = await bob.wait_for(
        lambda p: (
            p["from"].bare == room
            and p["from"].resource not in ("Bob", "")
            and p["type"] != "unavailable"
        ),
        presences=True,
    )
    return bob, alice, room, room_id, joined["from"].resource


async def test_muc_messages_both_ways(xmpp_bridge, prosody, bridge_env, xmpp_clients, uid):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        bob.say(room, "hello from xmpp")
        evt = await alice.wait_for_event(room_id, body_is("hello from xmpp"))
        assert evt["sender"] == ghost(f"{room}/Bob")
        await alice.send_text(room_id, "hello from matrix")
        msg = await bob.wait_for(lambda m: m["body"] == "hello from matrix")
        assert msg["from"] == f"{room}/{nick}"


from tests.xmpp.helpers import add, child, is_redaction_of, reflected, stanza_id  # noqa: E402

CORRECT = "urn:xmpp:message-correct:0"
RETRACT = "urn:xmpp:message-retract:1"
REACTIONS = "urn:xmpp:reactions:0"
REPLY = "urn:xmpp:reply:0"
FALLBACK = "urn:xmpp:fallback:0"


async def test_muc_corrections_retractions_reactions_replies(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        # XMPP correction -> Matrix edit
        first = await reflected(bob, room, bob.say(room, "teh typo"))
        original = await alice.wait_for_event(room_id, body_is("teh typo"))
        fix = bob.make(room, "the typo")
        add(fix, CORRECT, "replace", id=first["id"])
        fix.send()
        edit = await alice.wait_for_event(
            room_id,
            lambda e: e.get("content", {}).get("m.new_content", {}).get("body") == "the typo",
        )
        assert edit["content"]["m.relates_to"] == {
            "rel_type": "m.replace",
            "event_id": original["event_id"],
        }
        assert edit["sender"] == ghost(f"{room}/Bob")

        # Matrix edit -> XMPP correction of the id Bob saw
        mine = await alice.send_text(room_id, "wrogn")
        seen = await bob.wait_for(lambda m: m["body"] == "wrogn")
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* wrong",
                "m.new_content": {"msgtype": "m.text", "body": "wrong"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": mine},
            },
        )
        corrected = await bob.wait_for(lambda m: m["body"] == "wrong")
        assert child(corrected, CORRECT, "replace").get("id") == seen["id"]

        # XMPP reaction (to Alice's message, by the room's stanza-id) -> Matrix annotation
        react = bob.make(room)
        el = add(react, REACTIONS, "reactions", id=stanza_id(seen, room))
        add_reaction = el.makeelement(f"{{{REACTIONS}}}reaction", {})
        add_reaction.text = "👍"
        el.append(add_reaction)
        react.send()
        annotation = await alice.wait_for_event(room_id, lambda e: e.get("type") == "m.reaction")
        assert annotation["content"]["m.relates_to"] == {
            "rel_type": "m.annotation",
            "event_id": mine,
            "key": "👍",
        }
        assert annotation["sender"] == ghost(f"{room}/Bob")
        unreact = bob.make(room)
        add(unreact, REACTIONS, "reactions", id=stanza_id(seen, room))
        unreact.send()
        await alice.wait_for_event(room_id, is_redaction_of(annotation["event_id"]))

        # Matrix reaction -> XMPP reactions to Bob's message's stanza-id
        await alice.react(room_id, original["event_id"], "🎉")
        got = await bob.wait_for(
            lambda m: child(m, REACTIONS, "reactions") is not None and m["from"].resource == nick
        )
        reactions = child(got, REACTIONS, "reactions")
        assert reactions.get("id") == stanza_id(first, room)
        assert [r.text for r in reactions] == ["🎉"]

        # XMPP reply (with a quoted fallback) -> Matrix reply, fallback removed
        quote = "> Alice:\n> wrong\n"
        reply = bob.make(room, quote + "I agree")
        add(reply, REPLY, "reply", id=stanza_id(seen, room), to=f"{room}/{nick}")
        fb = add(reply, FALLBACK, "fallback", **{"for": REPLY})
        fb.append(fb.makeelement(f"{{{FALLBACK}}}body", {"start": "0", "end": str(len(quote))}))
        reply.send()
        answer = await alice.wait_for_event(room_id, body_is("I agree"))
        assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == mine

        # Matrix reply -> XMPP reply to the stanza-id
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "> <@x> teh typo\n\nindeed",
                "m.relates_to": {"m.in_reply_to": {"event_id": original["event_id"]}},
            },
        )
        answered = await bob.wait_for(lambda m: m["body"] == "indeed")
        assert child(answered, REPLY, "reply").get("id") == stanza_id(first, room)

        # XMPP retraction -> Matrix redaction; a retraction of someone else's message is ignored
        bogus = bob.make(room, "retracted")
        add(bogus, RETRACT, "retract", id=stanza_id(seen, room))
        bogus.send()
        retract = bob.make(room, "retracted")
        add(retract, RETRACT, "retract", id=stanza_id(first, room))
        retract.send()
        await alice.wait_for_event(room_id, is_redaction_of(original["event_id"]))
        assert not [e for e in alice.history(room_id) if is_redaction_of(mine)(e)]

        # Matrix redaction -> XMPP retraction of the stanza-id
        await alice.redact(room_id, mine)
        gone = await bob.wait_for(
            lambda m: child(m, RETRACT, "retract") is not None and m["from"].resource == nick
        )
        assert child(gone, RETRACT, "retract").get("id") == stanza_id(seen, room)


async def test_typing_subject_and_power_levels(xmpp_bridge, prosody, bridge_env, xmpp_clients, uid):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        bob_ghost = ghost(f"{room}/Bob")

        # Bob created the room: owner -> power level 100.
        async def level_of(user: str) -> int:
            pls = await alice.get_state(room_id, "m.room.power_levels")
            return int(pls.get("users", {}).get(user, 0))

        from tests.conftest import eventually

        async def has_level(user: str, level: int) -> bool:
            return await level_of(user) == level

        await eventually(lambda: has_level(bob_ghost, 100))
        # Chat state -> typing
        composing = bob.make(room)
        add(composing, "http://jabber.org/protocol/chatstates", "composing")
        composing.send()
        await alice.wait_for_event(
            room_id, lambda e: e.get("type") == "m.typing" and bob_ghost in e["content"]["user_ids"]
        )
        # Subject -> topic
        subject = bob.make(room)
        subject["subject"] = "Today: bridges"
        subject.send()

        async def topic_is(text: str) -> bool:
            try:
                return (await alice.get_state(room_id, "m.room.topic")).get("topic") == text
            except Exception:
                return False

        await eventually(lambda: topic_is("Today: bridges"))
        # Affiliation -> power level: Carol joins, Bob makes her admin, then kicks her.
        carol = await xmpp_clients(prosody, uid("carol"))
        await carol.join(room, "Carol")
        carol_ghost = ghost(f"{room}/Carol")
        await alice.wait_for_event(
            room_id,
            lambda e: e.get("type") == "m.room.member" and e.get("state_key") == carol_ghost,
        )
        await bob.xmpp.plugin["xep_0045"].set_affiliation(room, "admin", jid=carol.jid)
        await eventually(lambda: has_level(carol_ghost, 50))
        await bob.xmpp.plugin["xep_0045"].set_role(room, "Carol", "none", reason="bye")
        kicked = await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == carol_ghost
                and e["content"].get("membership") == "leave"
            ),
        )
        assert kicked["sender"] != carol_ghost  # a kick, not a leave


XHTML_IM = "http://jabber.org/protocol/xhtml-im"
OOB = "jabber:x:oob"


async def test_formatting_and_no_xml_injection(xmpp_bridge, prosody, bridge_env, xmpp_clients, uid):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        # Matrix HTML -> XEP-0393 styling in the body, and an XHTML-IM body
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "**bold** and _it_",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>bold</b> and <i>it</i>",
            },
        )
        styled = await bob.wait_for(lambda m: m["body"] == "*bold* and _it_")
        html = child(styled, XHTML_IM, "html")
        assert html is not None and "bold" in "".join(html.itertext())
        # XEP-0393 styling -> Matrix HTML
        bob.say(room, "a *strong* point")
        evt = await alice.wait_for_event(room_id, body_is("a *strong* point"))
        assert evt["content"]["formatted_body"] == "a <strong>strong</strong> point"
        # Markup and control characters from Matrix arrive as text; the stream survives.
        nasty = "</body><x xmlns='jabber:client'/>]]>&amp;\x00\x07\x1b<![CDATA[ok"
        await alice.send_text(room_id, nasty)
        got = await bob.wait_for(lambda m: m["body"].startswith("</body>"))
        assert got["body"] == nasty.replace("\x00", "").replace("\x07", "").replace("\x1b", "")
        assert got.xml.find("{jabber:client}x") is None
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "html",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>x</b></body></html><evil xmlns='jabber:client'/>\x01",
            },
        )
        got = await bob.wait_for(lambda m: m["body"].startswith("*x*"))
        assert got.xml.find("{jabber:client}evil") is None
        await alice.send_text(room_id, "still connected")
        await bob.wait_for(lambda m: m["body"] == "still connected")
        bob.say(room, "and back")
        await alice.wait_for_event(room_id, body_is("and back"))


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082"
)


async def test_files_both_ways(xmpp_bridge, prosody, bridge_env, xmpp_clients, uid):
    import aiohttp

    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        # Matrix media -> an XEP-0066 link that works without a Matrix token
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{bridge_env.synapse.base_url}/_matrix/media/v3/upload?filename=dot.png",
                data=PNG,
                headers={
                    "Authorization": f"Bearer {alice.access_token}",
                    "Content-Type": "image/png",
                },
            ) as resp:
                mxc = (await resp.json())["content_uri"]
            await alice.send_message(
                room_id,
                {
                    "msgtype": "m.image",
                    "body": "dot.png",
                    "url": mxc,
                    "info": {"mimetype": "image/png"},
                },
            )
            got = await bob.wait_for(lambda m: child(m, OOB, "x") is not None)
            url = child(got, OOB, "x").findtext(f"{{{OOB}}}url")
            assert got["body"] == url
            async with http.get(url) as resp:
                assert resp.status == 200 and await resp.read() == PNG
        # XMPP file links -> Matrix media: test_e2e_remote_media.py (allow-listed servers).


async def test_matrix_side_moderation_topic_and_receipts(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        carol = await xmpp_clients(prosody, uid("carol"))
        await carol.join(room, "Carol")
        carol_ghost = ghost(f"{room}/Carol")
        await alice.wait_for_event(
            room_id,
            lambda e: e.get("type") == "m.room.member" and e.get("state_key") == carol_ghost,
        )
        # Alice's occupant becomes a room moderator on XMPP (Bob owns the room).
        await bob.xmpp.plugin["xep_0045"].set_role(room, nick, "moderator")
        await bob.wait_for(
            lambda p: p["from"] == f"{room}/{nick}" and "moderator" in str(p), presences=True
        )
        # ...and a Matrix room moderator (the bot, the room's creator, makes her one).
        bot = xmpp_bridge.matrix.bot
        levels = await bot.get_power_levels(room_id)
        levels.set_user_level(alice.user_id, 50)
        await bot.set_power_levels(room_id, levels)
        # Matrix topic -> XMPP subject
        await alice.send_state(room_id, "m.room.topic", "", {"topic": "from matrix"})
        subject = await bob.wait_for(lambda m: m["subject"] == "from matrix")
        assert subject["from"] == f"{room}/{nick}"
        # Matrix read receipt -> XEP-0333 displayed marker (by the room's stanza-id)
        said = await reflected(bob, room, bob.say(room, "read me"))
        evt = await alice.wait_for_event(room_id, body_is("read me"))
        await alice.request("POST", f"/rooms/{room_id}/receipt/m.read/{evt['event_id']}", {})
        marker = await bob.wait_for(
            lambda m: child(m, "urn:xmpp:chat-markers:0", "displayed") is not None
        )
        assert child(marker, "urn:xmpp:chat-markers:0", "displayed").get("id") == stanza_id(
            said, room
        )
        # Alice (a Matrix room admin, an XMPP moderator) kicks Carol's ghost -> Carol is kicked.
        await alice.request(
            "POST", f"/rooms/{room_id}/kick", {"user_id": carol_ghost, "reason": "spam"}
        )
        kicked = await carol.wait_for(
            lambda p: p["from"] == f"{room}/Carol" and p["type"] == "unavailable", presences=True
        )
        assert "307" in str(kicked)


async def test_admin_command_creates_a_portal(xmpp_bridge, prosody, bridge_env, xmpp_clients, uid):
    from tests.helpers import admin_client, management_room

    admin = await admin_client(bridge_env.synapse)
    bob = await xmpp_clients(prosody, uid("bob"))
    name = uid("lobby")
    room = f"{name}@{prosody.muc}"
    await bob.join(room, "Bob")
    async with admin:
        conv = await management_room(admin, xmpp_bridge)
        assert "no XMPP room" in await conv.say(f"xmpp-portal nosuch{name}")
        answer = await conv.say(f"xmpp-portal {name}")  # muc_service completes the address
        assert room in answer
        room_id = await admin.join(alias(room))
        assert room_id in answer
        await bob.wait_for(
            lambda p: p["from"].bare == room and p["from"].resource != "Bob", presences=True
        )
        bob.say(room, "welcome")
        await admin.wait_for_event(room_id, body_is("welcome"))


async def test_only_the_rooms_own_alias_spelling_resolves(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    """A JID is caseless: each case spelling of a room's alias named the same room, and each
    query a stranger made for one added another alias to it."""
    _bob, alice, room, room_id, _nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        assert await alice.resolve_alias(alias(room)) == room_id
        node, _, domain = room.partition("@")
        for spelling in (f"{node.upper()}@{domain}", f"{node}@{domain.upper()}"):
            try:
                found = await alice.resolve_alias(alias(spelling))
            except MatrixError:
                found = None
            assert found is None, spelling
