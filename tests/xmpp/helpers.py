"""Small helpers for reading stanzas in XMPP tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

SID = "urn:xmpp:sid:0"


def stanza_id(msg: Any, room: str) -> str | None:
    for el in msg.xml.findall(f"{{{SID}}}stanza-id"):
        if el.get("by") == room:
            return el.get("id")
    return None


def child(msg: Any, ns: str, tag: str) -> ET.Element | None:
    return msg.xml.find(f"{{{ns}}}{tag}")


def add(msg: Any, ns: str, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(msg.xml, f"{{{ns}}}{tag}", attrs)


async def reflected(client: Any, room: str, msg_id: str) -> Any:
    """The room's copy of a message ``client`` sent (it carries the room's stanza-id)."""
    return await client.wait_for(lambda m: m["from"].bare == room and m["id"] == msg_id)


def is_redaction_of(event_id: str):
    return lambda e: (
        e.get("type") == "m.room.redaction"
        and (e.get("redacts") == event_id or e.get("content", {}).get("redacts") == event_id)
    )


def newer(pool: list[Any], predicate: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``predicate``, for stanzas received after this call only (``pool``: a client's list)."""
    old = {id(s) for s in pool}
    return lambda s: id(s) not in old and predicate(s)


async def matrix_presence(client: Any, user_id: str) -> dict[str, Any]:
    """A Matrix user's presence as ``client`` sees it (presence, status_msg...)."""
    return await client.request("GET", f"/presence/{quote(user_id, safe='')}/status")


def member_events(client: Any, room_id: str, user_id: str) -> list[str]:
    """The memberships ``user_id`` went through in a room, in order, as ``client`` saw them."""
    return [
        e["content"].get("membership")
        for e in client.history(room_id)
        if e.get("type") == "m.room.member" and e.get("state_key") == user_id
    ]
