"""Edge cases of occupant ghost ids and safe nicks; end to end in test_e2e_occupants.py."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from bridges.xmpp.jid import safe_nick
from bridges.xmpp.occupants import OCCUPANT_ID_NS, by_nick, by_occupant_id, occupant_id_of


def test_ids_never_collide_with_a_nick():
    room = "r@muc.example"
    assert by_nick(room, "Bob", 0) == "r@muc.example/Bob"  # as earlier releases had it
    assert by_nick(room, "Bob", 1) != by_nick(room, "Bob", 0)
    assert by_nick(room, "Bob", 1) != by_nick(room, "Bob", 2)
    # A nick shaped like a generated id is never used as it is.
    generated = by_occupant_id(room, "abc=")
    nick = generated.split("/", 1)[1]
    assert by_nick(room, nick, 0) != generated
    assert by_occupant_id(room, "abc=") != by_occupant_id(room, "abd=")
    assert by_occupant_id("other@muc.example", "abc=") != generated


def test_occupant_id_of_reads_only_the_xep_0421_element():
    pres = ET.fromstring(f'<presence><occupant-id xmlns="{OCCUPANT_ID_NS}" id="x1"/></presence>')
    assert occupant_id_of(pres) == "x1"
    assert occupant_id_of(ET.fromstring('<presence><occupant-id id="x1"/></presence>')) is None
    empty = ET.fromstring(f'<presence><occupant-id xmlns="{OCCUPANT_ID_NS}"/></presence>')
    assert occupant_id_of(empty) is None


def test_safe_nick_drops_what_resourceprep_refuses():
    assert safe_nick("Alice") == "Alice"
    assert safe_nick("Al \U0001f600") == "Al"
    assert safe_nick("a\U0001f600b c") == "ab c"
    assert safe_nick("\U0001f600", fallback="alice") == "alice"
    assert safe_nick("  \x00 ") == "matrix-user"
    assert len(safe_nick("n" * 200)) == 64


def test_an_occupant_id_counts_only_where_the_room_advertises_them():
    import asyncio
    from types import SimpleNamespace

    from bridges.xmpp.muc import MucManager
    from bridges.xmpp.muc_room import Room

    class Ids:
        async def occupancy(self, room: str, nick: str) -> int:
            return 3

    manager = MucManager(SimpleNamespace(idmap=Ids()))  # type: ignore[arg-type]
    forged = ET.fromstring(f'<message><occupant-id xmlns="{OCCUPANT_ID_NS}" id="x"/></message>')
    room = Room("r@muc.example", occupant_ids=False)
    assert asyncio.run(manager.sender_id(room, "Bob", forged)) == by_nick(room.jid, "Bob", 3)
    room.occupant_ids = True
    assert asyncio.run(manager.sender_id(room, "Bob", forged)) == by_occupant_id(room.jid, "x")
