"""XMPP -> Matrix: stanzas addressed to the component become remote events.

Each stanza is handled in arrival order per chat (a MUC, or one XMPP user and one login). What
is understood:

* messages (plain, XHTML-IM, XEP-0393 styling, ``/me``, XEP-0066 file links, XEP-0461 replies
  with their XEP-0428 fallback removed), XEP-0308 corrections, XEP-0424 retractions, XEP-0444
  reactions, XEP-0085 chat states, XEP-0333 displayed markers, MUC subjects;
* XEP-0184 receipt requests are answered once the message is stored by the bridge.

Bad input never raises out of here: a message to an unknown JID, an oversize body or a
malformed payload gets an error stanza (for 1:1 messages) or a log line (for groupchat).
Retractions, corrections and reactions are only accepted from the author of the message.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from slixmpp import JID, Message
from slixmpp.xmlstream import ET

from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    MessagePart,
    PortalKey,
    RemoteChatInfoChange,
    RemoteEdit,
    RemoteEvent,
    RemoteMessage,
    RemoteReaction,
    RemoteReactionRemove,
    RemoteReceipt,
    RemoteRedaction,
    RemoteTyping,
)

from .formatting import XHTML_NS, styling_to_html, xhtml_to_html
from .jid import clean_text, parse_room_jid

if TYPE_CHECKING:
    from .client import XMPPClient
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.inbound")

SID_NS = "urn:xmpp:sid:0"
RETRACT_NS = ("urn:xmpp:message-retract:1", "urn:xmpp:message-retract:0")
FASTEN_NS = "urn:xmpp:fasten:0"
CORRECT_NS = "urn:xmpp:message-correct:0"
REACTIONS_NS = "urn:xmpp:reactions:0"
REPLY_NS = "urn:xmpp:reply:0"
FALLBACK_NS = "urn:xmpp:fallback:0"
MARKERS_NS = "urn:xmpp:chat-markers:0"
RECEIPTS_NS = "urn:xmpp:receipts"
CHATSTATES_NS = "http://jabber.org/protocol/chatstates"
XHTML_IM_NS = "http://jabber.org/protocol/xhtml-im"
OOB_NS = "jabber:x:oob"
DELAY_NS = "urn:xmpp:delay"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
CONFERENCE_NS = "jabber:x:conference"
MAX_REACTIONS = 20


STANZA_NS = ("jabber:component:accept", "jabber:client")


def child(msg: Message, tag: str) -> ET.Element | None:
    """A direct child of the stanza in the stanza's own namespace (body, subject...)."""
    for ns in STANZA_NS:
        el = msg.xml.find(f"{{{ns}}}{tag}")
        if el is not None:
            return el
    return None


def _timestamp(msg: Message) -> float | None:
    delay = msg.xml.find(f"{{{DELAY_NS}}}delay")
    if delay is None or not delay.get("stamp"):
        return None
    try:
        return datetime.fromisoformat(delay.get("stamp", "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def message_ids(msg: Message, by: str | None) -> tuple[str, str, str]:
    """(canonical id, id attribute, origin-id). Canonical: the stanza-id ``by`` gave, if any."""
    mid = clean_text(msg["id"])[:256]
    origin_el = msg.xml.find(f"{{{SID_NS}}}origin-id")
    origin = clean_text(origin_el.get("id", ""))[:256] if origin_el is not None else ""
    stanza_id = ""
    if by:
        for el in msg.xml.findall(f"{{{SID_NS}}}stanza-id"):
            if el.get("by") == by and el.get("id"):
                stanza_id = clean_text(el.get("id", ""))[:256]
    return stanza_id or origin or mid, mid, origin


def _strip_fallbacks(msg: Message, body: str, namespaces: tuple[str, ...]) -> str:
    """Remove the XEP-0428 fallback ranges declared for ``namespaces`` from the body."""
    ranges: list[tuple[int, int]] = []
    for fb in msg.xml.findall(f"{{{FALLBACK_NS}}}fallback"):
        if fb.get("for") not in namespaces:
            continue
        spans = fb.findall(f"{{{FALLBACK_NS}}}body")
        if not spans:
            return ""  # the whole body is a fallback
        for span in spans:
            try:
                start, end = int(span.get("start", "0")), int(span.get("end", "0"))
            except ValueError:
                continue
            if 0 <= start < end <= len(body):
                ranges.append((start, end))
    for start, end in sorted(ranges, reverse=True):
        body = body[:start] + body[end:]
    return body


def _invitation(msg: Message) -> tuple[str, str, str] | None:
    """(room, inviter, reason) of a XEP-0045 mediated or XEP-0249 direct invitation, or None."""
    x = msg.xml.find(f"{{{MUC_USER_NS}}}x")
    invite = x.find(f"{{{MUC_USER_NS}}}invite") if x is not None else None
    frm: JID = msg["from"]
    if invite is not None and frm.node and not frm.resource:  # relayed by the room itself
        inviter = clean_text(invite.get("from", "")) or frm.bare
        return frm.bare, inviter, clean_text(invite.findtext(f"{{{MUC_USER_NS}}}reason") or "")
    direct = msg.xml.find(f"{{{CONFERENCE_NS}}}x")
    room = parse_room_jid(direct.get("jid", "")) if direct is not None else None
    if room is None or direct is None:
        return None
    return room.bare, frm.bare, clean_text(direct.get("reason", ""))


def media_content(url: str, body: str, desc: str | None) -> MessageContent:
    path = unquote(urlparse(url).path)
    filename = posixpath.basename(path) or "file"
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    msgtype = {"image": "m.image", "video": "m.video", "audio": "m.audio"}.get(
        mime.split("/", 1)[0], "m.file"
    )
    caption = body.replace(url, "").strip() or (desc or "").strip()
    content = MessageContent(
        body=caption or filename, msgtype=msgtype, media_url=url, media_info={"mimetype": mime}
    )
    return content


def text_and_file(msg: Message, body: str, content: MessageContent) -> list[MessagePart]:
    """The parts of a message with a file link (XEP-0066): a body that says more than the URL
    is the message's text (its first part, which replies and reactions land on) and the file
    its second part; a body that is only the URL, as clients send it, stays one file event."""
    url = content.media_url
    if not url:
        return []
    if content.reply_to:
        body = _strip_fallbacks(msg, body, (REPLY_NS,)) or body
    text = body.replace(url, "").strip()
    if not text:
        return []
    file = media_content(url, url, None)
    text_part = MessageContent(text, html=styling_to_html(text), reply_to=content.reply_to)
    return [MessagePart("", text_part), MessagePart("oob", file)]


class Inbound:
    def __init__(self, connector: XMPPConnector) -> None:
        self.connector = connector

    @property
    def max_body(self) -> int:
        return int(self.connector.setting("max_body_bytes"))

    # -- routing ------------------------------------------------------------------------------

    async def handle_message(self, msg: Message) -> None:
        mtype = msg["type"] or "normal"
        if mtype == "error":
            self.connector.outbound.on_error(msg)
            return
        to: JID = msg["to"]
        client = self.connector.client_by_jid(to.bare)
        if client is None:
            if mtype in ("chat", "normal") and child(msg, "body") is not None:
                condition = "item-not-found" if to.node else "service-unavailable"
                self.connector.send_error(msg, condition, "No such Matrix user on this gateway")
            return
        invitation = _invitation(msg) if mtype != "groupchat" else None
        if invitation is not None:
            await self._invited(client, *invitation)
        elif mtype == "groupchat":
            await self._groupchat(client, msg)
        elif msg["from"].bare in self.connector.muc.rooms:
            self.connector.send_error(
                msg, "feature-not-implemented", "Private messages in rooms are not bridged"
            )
        elif msg["from"].domain == self.connector.component_jid:
            log.debug("Ignoring a message between two users of this gateway")
        elif mtype in ("chat", "normal"):
            await self._chat(client, msg)

    async def _groupchat(self, client: XMPPClient, msg: Message) -> None:
        frm: JID = msg["from"]
        room = self.connector.muc.rooms.get(frm.bare)
        if room is None:
            return
        nick = frm.resource
        canonical, mid, origin = message_ids(msg, room.jid)
        if nick and nick in room.ours:
            # Our own message reflected by the room: it tells us the room's stanza-id.
            self.connector.outbound.on_echo(room.key, origin or mid, canonical)
            return
        if room.listener != client.login.id:
            return
        subject = child(msg, "subject")
        if subject is not None and child(msg, "body") is None:
            text = clean_text(subject.text or "")[:1000]
            if room.subject is None and not text:
                room.subject = text
                return
            room.subject = text
            occupant = room.occupants.get(nick) if nick else None
            sender = EventSender(occupant.remote_id, name=nick) if occupant else None
            await self.connector.queue(None, RemoteChatInfoChange(room.key, sender, topic=text))
            return
        if not nick:  # a status message from the room itself
            x = msg.xml.find(f"{{{MUC_USER_NS}}}x")
            found = x.findall(f"{{{MUC_USER_NS}}}status") if x is not None else []
            codes = {s.get("code") for s in found}
            if "104" in codes:  # its configuration changed: members-only, password...
                self.connector.spawn(self.connector.sync_room_info(room.jid))
            return
        remote_id = await self.connector.muc.sender_id(room, nick, msg.xml)
        sender = EventSender(remote_id, name=nick)
        await self._convert(room.key, None, sender, msg, canonical, (mid, origin), group=True)

    async def _invited(self, client: XMPPClient, room: str, inviter: str, reason: str) -> None:
        """An XMPP invitation of a Matrix user into a MUC: a Matrix invite to its portal.

        A new portal is created with the user invited; an existing one gets an invite from the
        bridge bot. The user joins the MUC when they join the Matrix room (as for any portal).
        """
        key = PortalKey(room)
        if client.is_in_portal(key):
            return
        connector = self.connector
        if not await connector.room_exists(room):
            log.info("Ignoring an invitation from %s to %s: not a room", inviter, room)
            return
        log.info("%s invited %s to %s", inviter, client.login.user_mxid, room)
        why = f"Invited on XMPP by {inviter}" + (f": {reason[:200]}" if reason else "")
        await connector.bridge.invite_to_portal(client.login.id, key, reason=why)

    async def _chat(self, client: XMPPClient, msg: Message) -> None:
        frm: JID = msg["from"]
        if not frm.node:
            return  # from a server or a component: nothing to bridge
        canonical, mid, origin = message_ids(msg, None)
        portal = PortalKey(frm.bare, client.login.id)
        sender = EventSender(
            frm.bare, login_id=client.login.id, name=self.connector.contact_name(frm.bare)
        )
        await self._convert(portal, client, sender, msg, canonical, (mid, origin), group=False)

    # -- conversion ---------------------------------------------------------------------------

    async def _convert(
        self,
        portal: PortalKey,
        client: XMPPClient | None,
        sender: EventSender,
        msg: Message,
        canonical: str,
        other_ids: tuple[str, str],
        *,
        group: bool,
    ) -> None:
        login_id = client.login.id if client else None
        log.debug("Converting %s in %s from %s: %s", canonical, portal, sender.remote_id, msg)
        idmap = self.connector.idmap
        body_el = child(msg, "body")
        body = clean_text(body_el.text if body_el is not None else "")
        if len(body.encode("utf-8")) > self.max_body:
            log.warning(
                "Dropped a %d-byte message from %s (limit %d)",
                len(body.encode("utf-8")),
                msg["from"],
                self.max_body,
            )
            if not group:
                self.connector.send_error(msg, "not-acceptable", "Message too long for Matrix")
            return
        ts = _timestamp(msg)

        async def emit(event: RemoteEvent) -> None:
            event.timestamp = ts
            await self.connector.queue(login_id, event)

        async def authored(target: str) -> bool:
            author = await idmap.author(portal, target)
            if author != sender.remote_id:
                log.warning(
                    "Ignoring a change of %s by %s (not its author)", target, sender.remote_id
                )
                return False
            return True

        # XEP-0424 retraction (current form, and the older fastening form)
        retract = None
        for ns in RETRACT_NS:
            retract = msg.xml.find(f"{{{ns}}}retract")
            if retract is not None:
                break
        target_ref = retract.get("id") if retract is not None else None
        if retract is None:
            apply_to = msg.xml.find(f"{{{FASTEN_NS}}}apply-to")
            if apply_to is not None and apply_to.find(f"{{{RETRACT_NS[1]}}}retract") is not None:
                target_ref = apply_to.get("id")
        if target_ref:
            target = await idmap.resolve(portal, clean_text(target_ref))
            if await authored(target):
                await emit(RemoteRedaction(portal, sender, target_id=target))
            return

        reactions = msg.xml.find(f"{{{REACTIONS_NS}}}reactions")
        if reactions is not None and reactions.get("id"):
            await self._reactions(portal, sender, reactions, emit)
            return

        replace = msg.xml.find(f"{{{CORRECT_NS}}}replace")
        if replace is not None and replace.get("id") and body:
            target = await idmap.resolve(portal, clean_text(replace.get("id")))
            if await authored(target):
                content = await self._content(portal, msg, body)
                await emit(RemoteEdit(portal, sender, target_id=target, content=content))
            return

        if not body:
            state = next(
                (
                    el.tag.split("}", 1)[1]
                    for el in msg.xml
                    if isinstance(el.tag, str) and el.tag.startswith(f"{{{CHATSTATES_NS}}}")
                ),
                None,
            )
            if state is not None:
                await emit(
                    RemoteTyping(portal, sender, typing=state == "composing", timeout_ms=30000)
                )
            displayed = msg.xml.find(f"{{{MARKERS_NS}}}displayed")
            if displayed is not None and displayed.get("id"):
                target = await idmap.resolve(portal, clean_text(displayed.get("id")))
                await emit(RemoteReceipt(portal, sender, last_read_id=target))
            return

        await idmap.add_aliases(portal, canonical, *other_ids)
        await idmap.remember(portal, canonical, sender.remote_id)
        content = await self._content(portal, msg, body)
        await emit(
            RemoteMessage(
                portal,
                sender,
                id=canonical,
                content=content,
                parts=text_and_file(msg, body, content),
            )
        )
        if not group and msg.xml.find(f"{{{RECEIPTS_NS}}}request") is not None and other_ids[0]:
            self.connector.outbound.send_receipt(msg["to"], msg["from"], other_ids[0])

    async def _content(self, portal: PortalKey, msg: Message, body: str) -> MessageContent:
        reply = msg.xml.find(f"{{{REPLY_NS}}}reply")
        reply_to = None
        if reply is not None and reply.get("id"):
            reply_to = await self.connector.idmap.resolve(portal, clean_text(reply.get("id")))
            body = _strip_fallbacks(msg, body, (REPLY_NS,)) or body
        oob = msg.xml.find(f"{{{OOB_NS}}}x")
        url = oob.findtext(f"{{{OOB_NS}}}url") if oob is not None else None
        if url and url.strip().startswith(("https://", "http://")):
            content = media_content(
                clean_text(url.strip()),
                body,
                clean_text(oob.findtext(f"{{{OOB_NS}}}desc")) if oob is not None else None,
            )
            content.reply_to = reply_to
            return content
        msgtype = "m.text"
        if body.startswith("/me "):
            body, msgtype = body[4:], "m.emote"
        html = None
        xhtml = msg.xml.find(f"{{{XHTML_IM_NS}}}html/{{{XHTML_NS}}}body")
        if xhtml is not None and msgtype == "m.text":
            html = xhtml_to_html(xhtml) or None
        if html is None:
            html = styling_to_html(body)
        return MessageContent(body=body, html=html, msgtype=msgtype, reply_to=reply_to)

    async def _reactions(
        self, portal: PortalKey, sender: EventSender, el: ET.Element, emit
    ) -> None:
        idmap = self.connector.idmap
        target = await idmap.resolve(portal, clean_text(el.get("id")))
        wanted: list[str] = []
        for r in el.findall(f"{{{REACTIONS_NS}}}reaction"):
            key = clean_text(r.text or "").strip()
            if key and len(key) <= 32 and key not in wanted:
                wanted.append(key)
        wanted = wanted[:MAX_REACTIONS]
        previous = await idmap.reactions(portal, target, sender.remote_id)
        for key in wanted:
            if key not in previous:
                await emit(RemoteReaction(portal, sender, target_id=target, key=key))
        for key in previous:
            if key not in wanted:
                await emit(RemoteReactionRemove(portal, sender, target_id=target, key=key))
        await idmap.set_reactions(portal, target, sender.remote_id, wanted)

    # -- archives -------------------------------------------------------------------------------

    async def archived(
        self, room_jid: str, archive_id: str, msg: Message, ts: float | None, ours: set[str]
    ) -> RemoteMessage | None:
        """A MUC archive (MAM) result as a message to backfill, or None if not a plain one."""
        nick = msg["from"].resource
        body_el = child(msg, "body")
        if not nick or nick in ours or body_el is None or not body_el.text:
            return None
        if any(
            msg.xml.find(f"{{{ns}}}{tag}") is not None
            for ns, tag in (
                (CORRECT_NS, "replace"),
                (RETRACT_NS[0], "retract"),
                (REACTIONS_NS, "reactions"),
            )
        ):
            return None
        body = clean_text(body_el.text)
        if len(body.encode("utf-8")) > self.max_body:
            return None
        portal = PortalKey(room_jid)
        _, mid, origin = message_ids(msg, room_jid)
        await self.connector.idmap.add_aliases(portal, archive_id, mid, origin)
        room = self.connector.muc.room(room_jid)
        remote_id = await self.connector.muc.sender_id(room, nick, msg.xml)
        await self.connector.idmap.remember(portal, archive_id, remote_id)
        content = await self._content(portal, msg, body)
        return RemoteMessage(
            portal,
            EventSender(remote_id, name=nick),
            timestamp=ts,
            network=self.connector.name,
            id=archive_id,
            content=content,
            parts=text_and_file(msg, body, content),  # as live messages: text, then the file
        )
