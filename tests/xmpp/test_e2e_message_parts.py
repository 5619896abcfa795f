"""An XMPP message with text and a file link (XEP-0066) as two Matrix events that stay one
message, end to end through Prosody and Synapse."""

from __future__ import annotations

from bridgekit.testing.media_servers import media_servers
from tests.helpers import body_is
from tests.xmpp.conftest import ghost
from tests.xmpp.helpers import add, child, is_redaction_of, reflected, stanza_id
from tests.xmpp.test_e2e_muc import open_muc_portal
from tests.xmpp.test_e2e_remote_media import OOB, media_bridge

REACTIONS = "urn:xmpp:reactions:0"
REPLY = "urn:xmpp:reply:0"
RETRACT = "urn:xmpp:message-retract:1"


async def test_text_and_file_are_two_parts_of_one_message(
    make_bridge, prosody, bridge_env, xmpp_clients, uid
):
    async with media_servers() as s:
        bridge = await media_bridge(make_bridge, prosody, s.good_port)
        bob, alice, room, room_id, nick = await open_muc_portal(
            bridge, prosody, bridge_env, xmpp_clients, uid
        )
        bob_ghost = ghost(f"{room}/Bob")
        link = f"{s.good}/cat.png"
        async with alice:
            msg = bob.make(room, f"look at *this*\n{link}")
            x = add(msg, OOB, "x")
            url = x.makeelement(f"{{{OOB}}}url", {})
            url.text = link
            x.append(url)
            msg.send()
            sent = await reflected(bob, room, msg["id"])
            image = await alice.wait_for_event(
                room_id, lambda e: e.get("content", {}).get("msgtype") == "m.image"
            )
            from_bob = [
                e
                for e in alice.history(room_id)
                if e.get("type") == "m.room.message" and e["sender"] == bob_ghost
            ]
            assert [e["content"]["body"] for e in from_bob] == ["look at *this*", "cat.png"]
            text = from_bob[0]
            assert text["content"]["formatted_body"] == "look at <strong>this</strong>"
            assert image["content"]["url"].startswith("mxc://")

            # A reaction and a reply on the file reach XMPP for the one stanza.
            await alice.react(room_id, image["event_id"], "🐈")
            got = await bob.wait_for(
                lambda m: (
                    child(m, REACTIONS, "reactions") is not None and m["from"].resource == nick
                )
            )
            assert child(got, REACTIONS, "reactions").get("id") == stanza_id(sent, room)
            await alice.send_message(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": "cute",
                    "m.relates_to": {"m.in_reply_to": {"event_id": image["event_id"]}},
                },
            )
            answered = await bob.wait_for(lambda m: m["body"] == "cute")
            assert child(answered, REPLY, "reply").get("id") == stanza_id(sent, room)

            # An XMPP reply to the stanza is a Matrix reply to its first part.
            reply = bob.make(room, "and it purrs")
            add(reply, REPLY, "reply", id=stanza_id(sent, room), to=f"{room}/Bob")
            reply.send()
            purrs = await alice.wait_for_event(room_id, body_is("and it purrs"))
            assert (
                purrs["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == (text["event_id"])
            )

            # Bob retracts the message: both parts are redacted.
            retract = bob.make(room, "retracted")
            add(retract, RETRACT, "retract", id=stanza_id(sent, room))
            retract.send()
            for event_id in (text["event_id"], image["event_id"]):
                await alice.wait_for_event(room_id, is_redaction_of(event_id))
