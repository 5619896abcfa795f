"""Matrix -> XMPP: stanzas for Matrix events, and knowing whether the server took them.

Every string from Matrix goes through :func:`~.jid.clean_text` and into slixmpp's element
API, never into XML text: a body of ``</body><x/>`` is sent as those characters.

A groupchat message counts as sent when the room reflects it back (with the stanza-id the
room gave it, which becomes the message's id); an error reply instead makes the send fail, so
the Matrix user is told. 1:1 messages count as sent when written; a later error is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from slixmpp import JID, Message

from bridgekit.events import MessageContent

from .formatting import html_to_styling, html_to_xhtml
from .inbound import (
    CHATSTATES_NS,
    CORRECT_NS,
    FALLBACK_NS,
    MARKERS_NS,
    OOB_NS,
    REACTIONS_NS,
    RECEIPTS_NS,
    REPLY_NS,
    SID_NS,
    XHTML_IM_NS,
)
from .jid import clean_text

if TYPE_CHECKING:
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.outbound")

RETRACT_NS = "urn:xmpp:message-retract:1"
HINTS_NS = "urn:xmpp:hints"
RETRACT_FALLBACK = (
    "This person attempted to retract a previous message, but it's unsupported by your client."
)


class SendError(Exception):
    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"the XMPP server refused it ({condition}{': ' + text if text else ''})")
        self.condition = condition


def stanza_id_for(event_id: str) -> str:
    """A message id derived from the Matrix event id: a resend after a crash reuses it."""
    return "mx" + hashlib.sha256(event_id.encode()).hexdigest()[:30]


def render(content: MessageContent) -> tuple[str, ET.Element | None]:
    """(XEP-0393 body, XHTML-IM body or None) for Matrix content."""
    body = clean_text(content.body)
    xhtml = None
    if content.html:
        styled = clean_text(html_to_styling(content.html))
        body = styled or body
        xhtml = html_to_xhtml(content.html)
    if content.msgtype == "m.emote":
        body = f"/me {body}"
        xhtml = None
    return body, xhtml


class Outbound:
    def __init__(self, connector: XMPPConnector) -> None:
        self.connector = connector
        self._pending: dict[tuple[str, str], asyncio.Future[str]] = {}

    # -- building ------------------------------------------------------------------------------

    def message(self, frm: str, to: str, mtype: str, msg_id: str | None = None) -> Message:
        msg = self.connector.component.make_message(mto=to, mfrom=frm, mtype=mtype)
        if msg_id:
            msg["id"] = msg_id
            ET.SubElement(msg.xml, f"{{{SID_NS}}}origin-id", {"id": msg_id})
        return msg

    @staticmethod
    def set_body(msg: Message, body: str) -> None:
        msg["body"] = clean_text(body)

    @staticmethod
    def add(msg: Message, ns: str, tag: str, attrs: dict[str, str] | None = None) -> ET.Element:
        return ET.SubElement(
            msg.xml, f"{{{ns}}}{tag}", {k: clean_text(v) for k, v in (attrs or {}).items()}
        )

    def text_message(
        self, frm: str, to: str, mtype: str, msg_id: str, body: str, xhtml: ET.Element | None
    ) -> Message:
        msg = self.message(frm, to, mtype, msg_id)
        self.set_body(msg, body)
        if xhtml is not None and (len(xhtml) or xhtml.text):
            html = self.add(msg, XHTML_IM_NS, "html")
            html.append(xhtml)
        self.add(msg, MARKERS_NS, "markable")
        if mtype == "chat":
            self.add(msg, RECEIPTS_NS, "request")
            self.add(msg, CHATSTATES_NS, "active")
        return msg

    def add_oob(self, msg: Message, url: str, desc: str | None) -> None:
        x = self.add(msg, OOB_NS, "x")
        ET.SubElement(x, f"{{{OOB_NS}}}url").text = clean_text(url)
        if desc:
            ET.SubElement(x, f"{{{OOB_NS}}}desc").text = clean_text(desc)[:1000]

    def add_reply(self, msg: Message, target: str, to: str | None) -> None:
        attrs = {"id": target}
        if to:
            attrs["to"] = to
        self.add(msg, REPLY_NS, "reply", attrs)

    def add_correction(self, msg: Message, original_id: str) -> None:
        self.add(msg, CORRECT_NS, "replace", {"id": original_id})

    def retraction(self, frm: str, to: str, mtype: str, target: str) -> Message:
        msg = self.message(frm, to, mtype, None)
        msg["id"] = self.connector.component.new_id()
        self.add(msg, RETRACT_NS, "retract", {"id": target})
        self.set_body(msg, RETRACT_FALLBACK)
        self.add(msg, FALLBACK_NS, "fallback", {"for": RETRACT_NS})
        self.add(msg, HINTS_NS, "store")
        return msg

    def reactions(self, frm: str, to: str, mtype: str, target: str, keys: list[str]) -> Message:
        msg = self.message(frm, to, mtype, None)
        msg["id"] = self.connector.component.new_id()
        el = self.add(msg, REACTIONS_NS, "reactions", {"id": target})
        for key in keys:
            ET.SubElement(el, f"{{{REACTIONS_NS}}}reaction").text = clean_text(key)
        self.add(msg, HINTS_NS, "store")
        return msg

    def chat_state(self, frm: str, to: str, mtype: str, state: str) -> Message:
        msg = self.message(frm, to, mtype, None)
        self.add(msg, CHATSTATES_NS, state)
        self.add(msg, HINTS_NS, "no-store")
        return msg

    def displayed(self, frm: str, to: str, mtype: str, target: str) -> Message:
        msg = self.message(frm, to, mtype, None)
        self.add(msg, MARKERS_NS, "displayed", {"id": target})
        self.add(msg, HINTS_NS, "store")
        return msg

    def send_receipt(self, frm: JID, to: JID, msg_id: str) -> None:
        if not self.connector.component.online.is_set():
            return
        msg = self.message(str(frm), str(to), "chat", None)
        self.add(msg, RECEIPTS_NS, "received", {"id": msg_id})
        msg.send()

    # -- sending and confirmation ------------------------------------------------------------

    async def send(self, msg: Message, room: str | None, timeout: float = 10) -> str:
        """Send ``msg``; for a groupchat message, wait for the room's echo and return its id."""
        msg_id = msg["id"]
        if room is None:
            msg.send()
            return msg_id
        key = (room, msg_id)
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            msg.send()
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            log.warning("No echo from %s for %s: assuming it was delivered", room, msg_id)
            return msg_id
        finally:
            self._pending.pop(key, None)

    def on_echo(self, portal_key, sent_id: str, canonical: str) -> None:
        fut = self._pending.get((portal_key.id, sent_id))
        if fut is not None and not fut.done():
            fut.set_result(canonical)

    def on_error(self, msg: Message) -> None:
        frm = msg["from"].bare
        condition, text = msg["error"]["condition"], clean_text(msg["error"]["text"])
        fut = self._pending.get((frm, msg["id"]))
        if fut is not None and not fut.done():
            fut.set_exception(SendError(condition, text))
            return
        log.info(
            "XMPP error from %s for message %s: %s %s", msg["from"], msg["id"], condition, text
        )
