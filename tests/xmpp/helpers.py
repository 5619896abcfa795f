"""Small helpers for reading stanzas in XMPP tests."""

from __future__ import annotations

from typing import Any
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
