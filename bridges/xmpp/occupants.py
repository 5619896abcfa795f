"""Which ghost speaks for a MUC occupant.

A room that shows real JIDs names the person: the ghost is their bare JID. A semi-anonymous
room shows only ``room@service/nick``, and a nick is not a person: after Bob leaves, whoever
takes "Bob" would post as Bob's ghost. So:

* XEP-0421 occupant ids, where the room advertises them (only then are they the room's own and
  not forged by the sender), key the ghost: stable across nick changes, different for another
  person under the same nick;
* otherwise each occupancy of a nick is a new ghost: the first (generation 0) keeps the plain
  ``room/nick`` id of earlier releases, and every time an occupant of that nick leaves, the
  next one gets the next generation (kept in the key/value table, so a restart does not move
  anyone to another ghost).

Generated ids are ``room@service/~<24 hex>``; a nick starting with ``~`` never uses the plain
form, so no nick can produce another occupant's id.
"""

from __future__ import annotations

import hashlib
from typing import Any

OCCUPANT_ID_NS = "urn:xmpp:occupant-id:0"


def occupant_id_of(xml: Any) -> str | None:
    """The XEP-0421 occupant id a room put on a stanza (check the room advertises it)."""
    el = xml.find(f"{{{OCCUPANT_ID_NS}}}occupant-id")
    value = el.get("id") if el is not None else None
    return value if value and len(value) <= 512 else None


def _token(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:24]


def by_occupant_id(room_jid: str, occupant_id: str) -> str:
    return f"{room_jid}/~{_token('occupant-id', occupant_id)}"


def by_nick(room_jid: str, nick: str, generation: int) -> str:
    if generation == 0 and not nick.startswith("~"):
        return f"{room_jid}/{nick}"
    return f"{room_jid}/~{_token('nick', nick, str(generation))}"
