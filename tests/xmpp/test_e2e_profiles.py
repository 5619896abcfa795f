"""Ghost info over time through a real XMPP server: a contact who publishes a new vCard and
advertises its photo hash in their presence (XEP-0153) gets their ghost's name and avatar
updated; a presence advertising the same photo costs no homeserver request, and a photo
someone else's ghost has already is not uploaded again."""

from __future__ import annotations

import hashlib

import pytest

from tests.harness.prosody import Prosody
from tests.helpers import count_profile_calls, management_room, member_is
from tests.xmpp.conftest import body_is, ghost
from tests.xmpp.helpers import add
from tests.xmpp.test_e2e_muc import PNG

NEW_PNG = PNG + b"\x00"  # other bytes (trailing data after IEND)
VCARD_UPDATE = "vcard-temp:x:update"


async def publish(client, name: str, photo: bytes) -> None:
    vcard = client.xmpp.plugin["xep_0054"].make_vcard()
    vcard["FN"] = name
    vcard["PHOTO"]["TYPE"] = "image/png"
    vcard["PHOTO"]["BINVAL"] = photo
    await client.xmpp.plugin["xep_0054"].publish_vcard(vcard)


def advertise(client, to: str, photo: bytes) -> None:
    """A presence with the vCard photo's hash, as XEP-0153 clients send it."""
    pres = client.xmpp.make_presence(pto=to)
    x = add(pres, VCARD_UPDATE, "x")
    photo_el = x.makeelement(f"{{{VCARD_UPDATE}}}photo", {})
    photo_el.text = hashlib.sha1(photo).hexdigest()
    x.append(photo_el)
    pres.send()


async def test_vcard_changes_reach_the_ghost(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid, monkeypatch: pytest.MonkeyPatch
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, xmpp_bridge)
        assert "nick" in await conv.say("login xmpp")
        assert "Logged in" in await conv.say("Alice W")
        jid = xmpp_bridge.connectors["xmpp"].puppets.jid_for(alice.user_id)
        bob = await xmpp_clients(prosody, uid("bob"))
        await publish(bob, "Bob Builder", PNG)
        bob.xmpp.make_message(mto=jid, mbody="hi alice", mtype="chat").send()
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        await alice.wait_for_event(room_id, body_is("hi alice"))
        first = await alice.get_profile(ghost(bob.jid))
        assert first["displayname"] == "Bob Builder"
        calls = count_profile_calls(monkeypatch)

        # Bob publishes a new vCard and says so in his presence: his ghost follows.
        await publish(bob, "Robert Builder", NEW_PNG)
        advertise(bob, jid, NEW_PNG)
        await alice.wait_for_event(
            room_id,
            lambda e: (
                member_is(ghost(bob.jid), displayname="Robert Builder", avatar_url=...)(e)
                and e["content"]["avatar_url"] != first["avatar_url"]
            ),
        )
        new_avatar = (await alice.get_profile(ghost(bob.jid)))["avatar_url"]
        assert calls["upload"] == 1

        # The same photo advertised again: nothing is asked of the homeserver.
        calls.clear()
        advertise(bob, jid, NEW_PNG)
        bob.xmpp.make_message(mto=jid, mbody="same as before", mtype="chat").send()
        await alice.wait_for_event(room_id, body_is("same as before"))
        assert calls == {}

        # Carol's vCard has the photo Bob's ghost shows: her ghost reuses it, no upload.
        carol = await xmpp_clients(prosody, uid("carol"))
        await publish(carol, "Carol", NEW_PNG)
        carol.xmpp.make_message(mto=jid, mbody="hi from carol", mtype="chat").send()
        carol_room, _ = await alice.wait_for_invite()
        await alice.join(carol_room)
        await alice.wait_for_event(carol_room, body_is("hi from carol"))
        assert (await alice.get_profile(ghost(carol.jid)))["avatar_url"] == new_avatar
        assert calls["upload"] == 0
