"""A portal room shows no more than its MUC lets each Matrix user see.

With ``follow_room_access`` (the default), a Matrix user whose occupant the MUC keeps out
(kicked, banned, refused as members-only) is removed from the portal room by the bridge bot
and told why in their management room; joining the portal room again tries the MUC again.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.testing.matrix_client import MatrixError
from bridges.xmpp.client import XMPPClient
from tests.conftest import eventually
from tests.helpers import management_room, removed
from tests.xmpp.conftest import alias, body_is
from tests.xmpp.test_e2e_muc import open_muc_portal

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


def login_of(bridge: Any, user_id: str) -> XMPPClient:
    clients = bridge.connectors["xmpp"].clients.values()
    return next(c for c in clients if c.login.user_mxid == user_id)


async def test_a_ban_removes_the_user_from_the_portal_and_a_rejoin_is_refused_the_same_way(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        conv = await management_room(alice, xmpp_bridge)
        client = login_of(xmpp_bridge, alice.user_id)
        muc = bob.xmpp.plugin["xep_0045"]
        await muc.set_affiliation(room, "outcast", jid=client.jid, reason="spam")
        kick = await alice.wait_for_event(room_id, removed(alice.user_id, "banned", "spam"), 30)
        assert kick["sender"] == xmpp_bridge.bot_mxid and room in kick["content"]["reason"]
        told = await conv.next_notice(timeout=20)
        assert "banned" in told and room in told and "removed" in told
        assert room not in client.rooms  # forgotten: no rejoin after a restart
        # Joining the portal room again tries the MUC again: refused, and out again.
        await alice.join(alias(room))

        def refusals() -> list[dict[str, Any]]:
            return [e for e in alice.history(room_id) if removed(alice.user_id, "are banned")(e)]

        await eventually(lambda: len(refusals()) == 1, timeout=30)
        assert "are banned from" in await conv.next_notice(timeout=20)
        assert not [m for m in bob.messages if m["from"].resource == nick and m["body"]]


async def test_a_kick_removes_the_user_and_joining_the_portal_again_rejoins_the_muc(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        muc = bob.xmpp.plugin["xep_0045"]
        await muc.set_role(room, nick, "none", reason="cool down")
        kick = await alice.wait_for_event(
            room_id, removed(alice.user_id, "kicked", "cool down"), 30
        )
        assert kick["sender"] == xmpp_bridge.bot_mxid
        await alice.join(alias(room))
        await alice.send_text(room_id, "back again")
        msg = await bob.wait_for(lambda m: m["body"] == "back again")
        assert msg["from"].bare == room


async def set_members_only(owner: Any, room: str, on: bool) -> None:
    form = owner.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig")
    form.add_field(var="muc#roomconfig_membersonly", value="1" if on else "0")
    await owner.xmpp.plugin["xep_0045"].set_room_config(room, form)


async def test_a_members_only_muc_lets_a_matrix_user_in_once_they_are_a_member(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    """The portal room of a members-only MUC: made public for whoever joins its alias (and
    removed if the MUC refuses them), invite-only once the MUC is known to be members-only,
    showing newcomers only what follows their join; public again when the MUC opens."""
    bob = await xmpp_clients(prosody, uid("bob"))
    room = f"{uid('room')}@{prosody.muc}"
    await bob.join(room, "Bob")
    muc = bob.xmpp.plugin["xep_0045"]
    await set_members_only(bob, room, True)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with alice, carol:
        conv = await management_room(alice, xmpp_bridge)
        room_id = await alice.join(alias(room))
        kick = await alice.wait_for_event(room_id, removed(alice.user_id, "members-only"), 30)
        assert kick["sender"] == xmpp_bridge.bot_mxid
        told = await conv.next_notice(timeout=20)
        assert "members-only" in told and room in told
        bob.say(room, "members only talk")
        await bob.wait_for(lambda m: m["body"] == "members only talk")
        # She was never in the MUC: nothing it said reached her through the portal.
        assert not [e for e in alice.history(room_id) if body_is("members only talk")(e)]
        # Made a member by the owner, she gets in.
        await muc.set_affiliation(room, "member", jid=login_of(xmpp_bridge, alice.user_id).jid)
        assert await alice.join(alias(room)) == room_id
        await alice.send_text(room_id, "thanks for the membership")
        await bob.wait_for(lambda m: m["body"] == "thanks for the membership")

        async def room_is(rule: str, visibility: str) -> bool:
            joins = await alice.get_state(room_id, "m.room.join_rules")
            seen = await alice.get_state(room_id, "m.room.history_visibility")
            return joins.get("join_rule") == rule and seen.get("history_visibility") == visibility

        await eventually(lambda: room_is("invite", "joined"), timeout=20)
        with pytest.raises(MatrixError):  # a stranger no longer walks in
            await carol.join(alias(room))
        # The owner opens the MUC (status 104): the room opens too.
        await set_members_only(bob, room, False)
        await eventually(lambda: room_is("public", "shared"), timeout=20)
        assert await carol.join(alias(room)) == room_id
