"""Which ghost speaks for a MUC occupant (real Synapse, real Prosody).

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

In a room that hides real JIDs a nick is not a person: whoever takes "Bob" after Bob left must
not post as Bob's ghost. With XEP-0421 occupant ids (Prosody's ``ids.`` MUC service in the
harness) the ghost follows the occupant id: the same person keeps one ghost across nick changes
and rejoins, another person under the same nick gets another. Without them (the ``muc``
service, ``muc_occupant_id = false``), each new occupant of a nick gets a new ghost.
"""

from __future__ import annotations

from tests.xmpp.conftest import alias, body_is
from tests.xmpp.helpers import member_events


async def _portal(prosody, bridge_env, xmpp_clients, uid, service: str):
    bob = await xmpp_clients(prosody, uid("bob"))
    eve = await xmpp_clients(prosody, uid("eve"))
    room = f"{uid('room')}@{service}"
    await bob.join(room, "Bob")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    room_id = await alice.join(alias(room))
    await bob.wait_for(
        lambda p: p["from"].bare == room and p["from"].resource not in ("Bob", ""),
        presences=True,
    )
    return bob, eve, alice, room, room_id


async def _leave(client, room: str, nick: str) -> None:
    client.xmpp.send_presence(pto=f"{room}/{nick}", ptype="unavailable")
    await client.wait_for(
        lambda p: p["from"] == f"{room}/{nick}" and p["type"] == "unavailable", presences=True
    )


async def test_a_new_occupant_of_a_nick_is_a_new_ghost_without_occupant_ids(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, eve, alice, room, room_id = await _portal(
        prosody, bridge_env, xmpp_clients, uid, prosody.muc
    )
    async with alice:
        bob.say(room, "I am Bob")
        bobs = (await alice.wait_for_event(room_id, body_is("I am Bob")))["sender"]
        await _leave(bob, room, "Bob")
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == bobs
                and e["content"].get("membership") == "leave"
            ),
        )
        await eve.join(room, "Bob")
        eve.say(room, "I am Bob too")
        evt = await alice.wait_for_event(room_id, body_is("I am Bob too"))
        assert evt["sender"] != bobs
        assert member_events(alice, room_id, bobs)[-1:] == ["leave"]


async def test_occupant_ids_key_the_ghost_across_nick_changes_and_rejoins(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    bob, eve, alice, room, room_id = await _portal(
        prosody, bridge_env, xmpp_clients, uid, prosody.muc_ids
    )
    async with alice:
        bob.say(room, "one")
        bobs = (await alice.wait_for_event(room_id, body_is("one")))["sender"]
        # A nick change: the same ghost, renamed (the occupant id does not change).
        bob.xmpp.send_presence(pto=f"{room}/Robert")
        await bob.wait_for(
            lambda p: p["from"] == f"{room}/Robert" and p["type"] != "unavailable",
            presences=True,
        )
        bob.say(room, "two")
        assert (await alice.wait_for_event(room_id, body_is("two")))["sender"] == bobs
        # Bob leaves; Eve takes his nick: someone else, another ghost.
        await _leave(bob, room, "Robert")
        await eve.join(room, "Robert")
        eve.say(room, "three")
        assert (await alice.wait_for_event(room_id, body_is("three")))["sender"] != bobs
        # Eve leaves, Bob comes back under his first nick: his own ghost again.
        await _leave(eve, room, "Robert")
        await bob.join(room, "Bob")
        bob.say(room, "four")
        assert (await alice.wait_for_event(room_id, body_is("four")))["sender"] == bobs


async def test_a_display_name_refused_as_a_nick_joins_under_a_safe_one(
    xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
):
    """slixmpp checks nicks with resourceprep (Unicode 3.2): emoji and newer characters are
    refused. They are dropped from the nick instead of failing the join."""
    bob = await xmpp_clients(prosody, uid("bob"))
    room = f"{uid('room')}@{prosody.muc}"
    await bob.join(room, "Bob")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        await alice.set_displayname("Al \U0001f600\u0378")
        room_id = await alice.join(alias(room))
        joined = await bob.wait_for(
            lambda p: p["from"].bare == room and p["from"].resource not in ("Bob", ""),
            presences=True,
        )
        assert joined["from"].resource == "Al"
        await alice.send_text(room_id, "made it")
        msg = await bob.wait_for(lambda m: m["body"] == "made it")
        assert msg["from"] == f"{room}/Al"
