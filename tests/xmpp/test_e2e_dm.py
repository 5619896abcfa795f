"""1:1 chats end to end: an XMPP user's JID <-> a DM portal, logins, receipts, bad input."""

from __future__ import annotations

import pytest

from tests.harness.prosody import Prosody
from tests.helpers import management_room
from tests.xmpp.conftest import body_is, ghost
from tests.xmpp.helpers import add, child

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

RECEIPTS = "urn:xmpp:receipts"
MARKERS = "urn:xmpp:chat-markers:0"
CORRECT = "urn:xmpp:message-correct:0"


async def test_dm_both_ways_with_login_command(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, xmpp_bridge)
        assert "nick" in await conv.say("login xmpp")
        assert "Logged in" in await conv.say("Alice W")
        connector = xmpp_bridge.connectors["xmpp"]
        jid = connector.puppets.jid_for(alice.user_id)
        bob = await xmpp_clients(prosody, uid("bob"))
        # The gateway and the user's JID answer service discovery.
        info = await bob.xmpp.plugin["xep_0030"].get_info(jid=jid)
        assert ("client", "pc", None, "Alice W") in info["disco_info"]["identities"]
        info = await bob.xmpp.plugin["xep_0030"].get_info(jid=prosody.component)
        assert [i[:2] for i in info["disco_info"]["identities"]] == [("gateway", "matrix")]

        # Bob's vCard (name and photo) becomes his ghost's profile.
        from tests.xmpp.test_e2e_muc import PNG

        vcard = bob.xmpp.plugin["xep_0054"].make_vcard()
        vcard["FN"] = "Bob Builder"
        vcard["PHOTO"]["TYPE"] = "image/png"
        vcard["PHOTO"]["BINVAL"] = PNG
        await bob.xmpp.plugin["xep_0054"].publish_vcard(vcard)

        hello = bob.make(jid, "hi alice", mtype="chat")
        add(hello, RECEIPTS, "request")
        hello.send()
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        evt = await alice.wait_for_event(room_id, body_is("hi alice"))
        assert evt["sender"] == ghost(bob.jid)
        profile = await alice.get_profile(ghost(bob.jid))
        assert profile["displayname"] == "Bob Builder"
        assert profile.get("avatar_url", "").startswith("mxc://")
        receipt = await bob.wait_for(lambda m: child(m, RECEIPTS, "received") is not None)
        assert child(receipt, RECEIPTS, "received").get("id") == hello["id"]

        mine = await alice.send_text(room_id, "hi bob")
        got = await bob.wait_for(lambda m: m["body"] == "hi bob")
        assert got["from"].bare == jid and got["type"] == "chat"

        # A correction, a chat state and a displayed marker from Bob
        fix = bob.make(jid, "hi Alice", mtype="chat")
        add(fix, CORRECT, "replace", id=hello["id"])
        fix.send()
        await alice.wait_for_event(
            room_id,
            lambda e: e.get("content", {}).get("m.new_content", {}).get("body") == "hi Alice",
        )
        typing = bob.make(jid, mtype="chat")
        add(typing, "http://jabber.org/protocol/chatstates", "composing")
        typing.send()
        await alice.wait_for_event(
            room_id,
            lambda e: e.get("type") == "m.typing" and ghost(bob.jid) in e["content"]["user_ids"],
        )
        marker = bob.make(jid, mtype="chat")
        add(marker, MARKERS, "displayed", id=got["id"])
        marker.send()
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.receipt"
                and ghost(bob.jid) in e["content"].get(mine, {}).get("m.read", {})
            ),
        )
        # Bob's presence becomes the ghost's Matrix presence.
        away = bob.xmpp.make_presence(pto=jid, pshow="away")
        away.send()

        async def ghost_away() -> bool:
            status = await alice.request("GET", f"/presence/{ghost(bob.jid)}/status")
            return status.get("presence") == "unavailable"

        from tests.conftest import eventually

        await eventually(ghost_away)


async def test_dm_from_matrix_and_bad_input(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        carol = await xmpp_clients(prosody, uid("carol"))
        conv = await management_room(alice, xmpp_bridge)
        answer = await conv.say(f"xmpp-dm {carol.jid}")
        assert "Chat with" in answer
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        await alice.send_text(room_id, "hello carol")
        got = await carol.wait_for(lambda m: m["body"] == "hello carol")
        jid = got["from"].bare
        carol.say(jid, "hello alice", "chat")
        await alice.wait_for_event(room_id, body_is("hello alice"))
        # Unknown users of the gateway, oversize bodies: error stanzas, nothing bridged.
        carol.say(f"nobody_nowhere@{prosody.component}", "anyone?", "chat")
        err = await carol.wait_for(
            lambda m: m["type"] == "error" and m["from"].node == "nobody_nowhere"
        )
        assert err["error"]["condition"] == "item-not-found"
        carol.say(jid, "x" * 70_000, "chat")
        err = await carol.wait_for(lambda m: m["type"] == "error" and m["from"].bare == jid)
        assert err["error"]["condition"] == "not-acceptable", [str(m) for m in carol.messages]
        # A malformed payload (reactions to nothing, a retraction without id) is dropped quietly.
        odd = carol.make(jid, mtype="chat")
        add(odd, "urn:xmpp:reactions:0", "reactions")
        add(odd, "urn:xmpp:message-retract:1", "retract")
        odd.send()
        carol.say(jid, "still fine", "chat")
        await alice.wait_for_event(room_id, body_is("still fine"))
        bodies = [
            e["content"].get("body")
            for e in alice.history(room_id)
            if e.get("type") == "m.room.message"
        ]
        assert "x" * 70_000 not in bodies
