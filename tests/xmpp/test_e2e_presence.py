"""Presence end to end (real Synapse, real Prosody): Matrix users <-> XMPP occupants/contacts.

* A Matrix user's presence is their component JID's presence: in every MUC they are in (as
  their occupant) and to the XMPP users subscribed to their JID. Matrix ``unavailable`` is XMPP
  ``away``, ``offline`` is ``xa`` (they stay in the rooms), the status message goes along.
* An XMPP occupant's presence is their ghost's Matrix presence: ``away``, ``xa`` and ``dnd`` are
  ``unavailable``, with the status message; an occupant who leaves the MUC leaves the room.
"""

from __future__ import annotations

import asyncio

import pytest

from bridgekit.testing.matrix_client import MatrixError
from tests.conftest import eventually
from tests.xmpp.conftest import ghost
from tests.xmpp.helpers import matrix_presence, member_events, newer
from tests.xmpp.test_e2e_muc import open_muc_portal

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


def occupant_presence(room: str, nick: str, show: str, status: str | None = None):
    """An available presence of ``room/nick`` with this show (and status, if given)."""
    return lambda p: (
        p["from"] == f"{room}/{nick}"
        and p.xml.get("type") is None
        and p["show"] == show
        and (status is None or p["status"] == status)
    )


async def test_matrix_presence_reaches_the_muc_and_subscribed_contacts(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        jid = xmpp_bridge.connectors["xmpp"].puppets.jid_for(alice.user_id)
        # Carol subscribes to Alice's JID: she becomes one of its contacts, and sees it online.
        carol = await xmpp_clients(prosody, uid("carol"))
        carol.xmpp.send_presence_subscription(pto=jid)
        await carol.wait_for(
            lambda p: p["from"].bare == jid and p.xml.get("type") is None, presences=True
        )

        async def set_presence(presence: str, status: str | None = None) -> None:
            body = {"presence": presence} | ({"status_msg": status} if status else {})
            await alice.request("PUT", f"/presence/{alice.user_id}/status", body)

        # unavailable -> away, with the status message, in the room and to the contact
        in_room = newer(bob.presences, occupant_presence(room, nick, "away", "at lunch"))
        to_carol = newer(
            carol.presences,
            lambda p: p["from"].bare == jid and p["show"] == "away" and p["status"] == "at lunch",
        )
        await set_presence("unavailable", "at lunch")
        await bob.wait_for(in_room, presences=True)
        await carol.wait_for(to_carol, presences=True)

        # offline -> xa: the occupant stays in the room
        in_room = newer(bob.presences, occupant_presence(room, nick, "xa"))
        await set_presence("offline")
        await bob.wait_for(in_room, presences=True)

        # online -> plain available presence, no status
        in_room = newer(bob.presences, occupant_presence(room, nick, ""))
        to_carol = newer(
            carol.presences,
            lambda p: p["from"].bare == jid and p.xml.get("type") is None and p["show"] == "",
        )
        await set_presence("online")
        back = await bob.wait_for(in_room, presences=True)
        assert not back["status"]
        await carol.wait_for(to_carol, presences=True)


async def test_occupant_presence_is_the_ghosts_presence_and_leaving_leaves_the_room(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        bob_ghost = ghost(f"{room}/Bob")

        last_seen: dict[str, object] = {}

        async def ghost_presence_is(user: str, presence: str, status: str | None) -> bool:
            try:
                seen = await matrix_presence(alice, user)
            except MatrixError as e:  # not in a room with Alice yet
                last_seen[user] = e
                return False
            last_seen[user] = seen
            return seen.get("presence") == presence and seen.get("status_msg") == status

        async def wait_presence(user: str, presence: str, status: str | None) -> None:
            try:
                await eventually(lambda: ghost_presence_is(user, presence, status))
            except AssertionError:
                # What the homeserver last said tells a lost update from a slow one.
                raise AssertionError(
                    f"{user} not {presence}/{status!r}; last seen: {last_seen.get(user)!r}"
                ) from None

        # The last step changes the state but not the (empty) status message: still news.
        steps = (("away", "brb"), ("xa", "gone home"), ("dnd", "busy"), ("away", None))
        for show, status in steps:
            bob.xmpp.send_presence(pto=f"{room}/Bob", pshow=show, pstatus=status)
            await wait_presence(bob_ghost, "unavailable", status)
        bob.xmpp.send_presence(pto=f"{room}/Bob")
        await wait_presence(bob_ghost, "online", None)

        # Someone who arrives already away is shown away at once.
        carol = await xmpp_clients(prosody, uid("carol"))
        arrival = carol.xmpp.make_presence(pto=f"{room}/Carol", pshow="xa", pstatus="on holiday")
        arrival.enable("muc_join")
        arrival["muc_join"]["history"]["maxstanzas"] = "0"
        arrival.send()
        carol_ghost = ghost(f"{room}/Carol")
        await wait_presence(carol_ghost, "unavailable", "on holiday")

        # Leaving the MUC is leaving the Matrix room (the ghost leaves: not a kick).
        bob.xmpp.send_presence(pto=f"{room}/Bob", ptype="unavailable")
        left = await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == bob_ghost
                and e["content"].get("membership") == "leave"
            ),
        )
        assert left["sender"] == bob_ghost
        assert member_events(alice, room_id, carol_ghost)[-1] == "join"


async def test_an_occupants_presence_outlives_the_homeservers_presence_timeout(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    """Synapse marks a user who does not sync offline 30 s after their last presence update;
    ghosts never sync, so the bridge sets their presence again (``bridge.presence_refresh``,
    25 s by default). Bob, away, still reads away after Synapse's timeout; an occupant who
    arrives plain available reads online."""
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        bob_ghost = ghost(f"{room}/Bob")
        bob.xmpp.send_presence(pto=f"{room}/Bob", pshow="away", pstatus="lunch")

        async def reads(user: str, presence: str, status: str | None) -> bool:
            try:
                seen = await matrix_presence(alice, user)
            except MatrixError:
                return False
            return seen.get("presence") == presence and seen.get("status_msg") == status

        await eventually(lambda: reads(bob_ghost, "unavailable", "lunch"))
        carol = await xmpp_clients(prosody, uid("carol"))
        arrival = carol.xmpp.make_presence(pto=f"{room}/Carol")
        arrival.enable("muc_join")
        arrival["muc_join"]["history"]["maxstanzas"] = "0"
        arrival.send()
        carol_ghost = ghost(f"{room}/Carol")
        await eventually(lambda: reads(carol_ghost, "online", None))
        await asyncio.sleep(36)  # past Synapse's 30 s sync_online_timeout
        assert await reads(bob_ghost, "unavailable", "lunch"), await matrix_presence(
            alice, bob_ghost
        )
        assert await reads(carol_ghost, "online", None), await matrix_presence(alice, carol_ghost)
