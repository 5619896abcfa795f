"""``start-chat xmpp <jid>`` and the older ``xmpp-dm``: a DM portal with an XMPP user."""

from __future__ import annotations

import pytest

from tests.harness.prosody import Prosody
from tests.helpers import management_room
from tests.xmpp.conftest import body_is, ghost

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_start_chat_opens_a_dm_with_an_xmpp_user_both_ways(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        carol = await xmpp_clients(prosody, uid("carol"))
        conv = await management_room(alice, xmpp_bridge)
        # No XMPP login yet: one is made, the chat opened and alice invited.
        answer = await conv.say(f"start-chat xmpp {carol.jid}")
        assert "Chat with" in answer and ghost(carol.jid) in answer, answer
        room_id, _ = await alice.wait_for_invite()
        assert room_id in answer
        await alice.join(room_id)
        await alice.send_text(room_id, "hello carol")
        got = await carol.wait_for(lambda m: m["body"] == "hello carol")
        carol.say(got["from"].bare, "hello alice", "chat")
        evt = await alice.wait_for_event(room_id, body_is("hello alice"))
        assert evt["sender"] == ghost(carol.jid)

        # Again, by the alias and by the old command: the same room.
        assert room_id in await conv.say(f"pm xmpp {carol.jid}")
        assert room_id in await conv.say(f"xmpp-dm {carol.jid}")

        # Not an XMPP user's address: an answer, no room.
        answer = await conv.say("start-chat xmpp not-a-user.example.org")
        assert "not a valid xmpp identifier" in answer, answer
        answer = await conv.say(f"start-chat xmpp someone@{prosody.component}")
        assert "not a valid xmpp identifier" in answer and "bridge" in answer, answer
        answer = await conv.say("start-chat xmpp a@b@c")
        assert "not a valid xmpp identifier" in answer, answer
