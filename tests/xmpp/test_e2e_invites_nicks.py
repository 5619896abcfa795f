"""Invitations and nick changes end to end (real Synapse, real Prosody).

Invitations:

* A Matrix user invited (on Matrix) into a portal is an occupant of the MUC once they join.
* A Matrix user inviting an XMPP user's ghost sends that user a XEP-0045 invitation.
* An XMPP user inviting a Matrix user's JID into a MUC (XEP-0045 mediated or XEP-0249 direct
  invitation) gets the Matrix user a Matrix invite to the MUC's portal, created if need be;
  joining it makes them an occupant. The invitation is not bridged as a chat with the room.

Nick changes:

* An XMPP occupant's nick change keeps the same ghost when the room shows real JIDs (the display
  name follows the nick, no leave and join); in rooms that hide them the ghost is the occupant
  JID, so the old one leaves and the new one joins under the new nick.
* A Matrix user's display name change is their occupants' nick change. A room that refuses the
  new nick (taken: 409 conflict) keeps the old one, the bridge's record of it too, and the user
  hears why in their management room.
* A Matrix user whose nick is already held in the room joins as "nick [m]" (then [m2], [m3]).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from tests.conftest import eventually
from tests.helpers import management_room
from tests.xmpp.conftest import alias, body_is, ghost
from tests.xmpp.helpers import member_events, newer
from tests.xmpp.test_e2e_muc import open_muc_portal

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

MUC_USER = "http://jabber.org/protocol/muc#user"
CONFERENCE = "jabber:x:conference"


def occupant_joined(room: str, nick: str):
    return lambda p: p["from"] == f"{room}/{nick}" and p.xml.get("type") is None


async def display_name(client, user_id: str) -> str | None:
    return (await client.get_profile(user_id)).get("displayname")


# -- invitations -------------------------------------------------------------------------------


async def test_invitations_from_matrix(xmpp_bridge, prosody, bridge_env, xmpp_clients, uid):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    dave = await bridge_env.synapse.register_user(uid("dave"))
    async with alice, dave:
        # Another Matrix user: invited on Matrix, an occupant once they accept.
        await alice.invite(room_id, dave.user_id)
        invited_to, _ = await dave.wait_for_invite()
        assert invited_to == room_id
        await dave.join(room_id)
        await bob.wait_for(occupant_joined(room, dave.user_id[1:].split(":")[0]), presences=True)

        # An XMPP user's ghost: the room relays a XEP-0045 invitation to Carol.
        carol = await xmpp_clients(prosody, uid("carol"))
        await alice.invite(room_id, ghost(carol.jid))
        invitation = await carol.wait_for(
            lambda m: m["from"].bare == room and m.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite")
        )
        assert invitation.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite") is not None


async def test_invitations_from_xmpp_to_a_matrix_users_jid(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    # Alice has an XMPP JID (she is in a portal already).
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    jid = xmpp_bridge.connectors["xmpp"].puppets.jid_for(alice.user_id)
    async with alice:
        # A mediated invitation to a room without a portal: a new portal, Alice invited.
        lounge = f"{uid('lounge')}@{prosody.muc}"
        await bob.join(lounge, "Bob")
        bob.xmpp.plugin["xep_0045"].invite(lounge, jid, reason="come in")
        lounge_id, _ = await alice.wait_for_invite()
        await alice.join(lounge_id)
        await bob.wait_for(
            lambda p: p["from"].bare == lounge and p["from"].resource == nick, presences=True
        )
        bob.say(lounge, "welcome to the lounge")
        evt = await alice.wait_for_event(lounge_id, body_is("welcome to the lounge"))
        assert evt["sender"] == ghost(f"{lounge}/Bob")
        # ...and no chat with the room itself was bridged.
        assert not [e for e in alice.history(lounge_id) if e["sender"] == ghost(lounge)]

        # A direct (XEP-0249) invitation to a room whose portal exists (Eve made it): Alice is
        # invited to that portal.
        attic = f"{uid('attic')}@{prosody.muc}"
        await bob.join(attic, "Bob")
        eve = await bridge_env.synapse.register_user(uid("eve"))
        async with eve:
            attic_id = await eve.join(alias(attic))
            direct = bob.make(jid, mtype="normal")
            ET.SubElement(direct.xml, f"{{{CONFERENCE}}}x", {"jid": attic, "reason": "up here"})
            direct.send()
            invited_to, inviter = await alice.wait_for_invite()
            assert invited_to == attic_id
            await alice.join(attic_id)
            await bob.wait_for(
                lambda p: p["from"].bare == attic and p["from"].resource == nick, presences=True
            )


# -- nick changes --------------------------------------------------------------------------------


async def test_nick_change_in_a_room_that_hides_real_jids(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        bob.say(room, "as Bob")
        await alice.wait_for_event(room_id, body_is("as Bob"))
        bob.xmpp.send_presence(pto=f"{room}/Robert")
        old, new = ghost(f"{room}/Bob"), ghost(f"{room}/Robert")
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == new
                and e["content"].get("membership") == "join"
            ),
        )
        await eventually(lambda: member_events(alice, room_id, old)[-1:] == ["leave"])
        assert await display_name(alice, new) == "Robert"
        bob.say(room, "as Robert")
        evt = await alice.wait_for_event(room_id, body_is("as Robert"))
        assert evt["sender"] == new


async def test_nick_change_with_a_known_real_jid_keeps_the_ghost(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        # Bob (the owner) makes real JIDs visible to everyone; then Carol comes in.
        muc = bob.xmpp.plugin["xep_0045"]
        form = bob.xmpp.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig")
        form.add_field(var="muc#roomconfig_whois", value="anyone")
        await muc.set_room_config(room, form)
        carol = await xmpp_clients(prosody, uid("carol"))
        await carol.join(room, "Carol")
        carol_ghost = ghost(carol.jid)
        carol.say(room, "as Carol")
        evt = await alice.wait_for_event(room_id, body_is("as Carol"))
        assert evt["sender"] == carol_ghost

        carol.xmpp.send_presence(pto=f"{room}/Caroline")

        async def renamed() -> bool:
            return await display_name(alice, carol_ghost) == "Caroline"

        await eventually(renamed)
        carol.say(room, "as Caroline")
        evt = await alice.wait_for_event(room_id, body_is("as Caroline"))
        assert evt["sender"] == carol_ghost
        # The same ghost all along: it never left, no ghost for the new occupant JID.
        assert member_events(alice, room_id, carol_ghost)[-1] == "join"
        assert "leave" not in member_events(alice, room_id, carol_ghost)
        assert member_events(alice, room_id, ghost(f"{room}/Caroline")) == []


async def test_matrix_display_name_change_is_a_nick_change(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        renamed = newer(bob.presences, occupant_joined(room, "Alice Liddell"))
        await alice.set_displayname("Alice Liddell")
        await bob.wait_for(renamed, presences=True)
        # The room announced a nick change (303), not a leave and a join.
        change = await bob.wait_for(
            lambda p: p["from"] == f"{room}/{nick}" and p.xml.get("type") == "unavailable",
            presences=True,
        )
        assert "303" in str(change)
        await alice.send_text(room_id, "new name")
        msg = await bob.wait_for(lambda m: m["body"] == "new name")
        assert msg["from"] == f"{room}/Alice Liddell"


async def test_a_refused_nick_change_keeps_the_old_nick_and_says_why(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        conv = await management_room(alice, xmpp_bridge)
        connector = xmpp_bridge.connectors["xmpp"]
        client = next(c for c in connector.clients.values() if c.login.user_mxid == alice.user_id)
        await alice.set_displayname("Bob")  # Bob (XMPP) holds that nick in the room
        notice = await conv.next_notice()
        assert f"refused the nick Bob (conflict): you are still {nick} there" in notice
        assert client.rooms[room] == nick
        await alice.send_text(room_id, "still me")
        msg = await bob.wait_for(lambda m: m["body"] == "still me")
        assert msg["from"] == f"{room}/{nick}"


async def test_a_taken_nick_at_join_gets_the_matrix_suffix(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        taken = alice.user_id[1:].split(":")[0]  # her display name: the localpart
        mallory = await xmpp_clients(prosody, uid("mallory"))
        room = f"{uid('room')}@{prosody.muc}"
        await mallory.join(room, taken)  # an XMPP user already holds that nick
        room_id = await alice.join(alias(room))
        joined = await mallory.wait_for(occupant_joined(room, f"{taken} [m]"), presences=True)
        assert joined is not None
        await alice.send_text(room_id, "hello under a suffix")
        msg = await mallory.wait_for(lambda m: m["body"] == "hello under a suffix")
        assert msg["from"] == f"{room}/{taken} [m]"
