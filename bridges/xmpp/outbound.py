"""Matrix -> XMPP: stanzas for Matrix events, and knowing whether the server took them.

Every string from Matrix goes through :func:`~.jid.clean_text` and into slixmpp's element
API, never into XML text: a body of ``</body><x/>`` is sent as those characters.

A groupchat message counts as sent when the room reflects it back (with the stanza-id the
room gave it, which becomes the message's id); an error reply instead makes the send fail, so
the Matrix user is told. 1:1 messages count as sent when written; a later error is logged.

Matrix media goes to XMPP through the server's XEP-0363 upload service when it has one
(:class:`HttpUpload`): XMPP clients show inline only files on their own server, and the file
outlives the bridge. The bridge downloads the media with its own Matrix token, asks for a slot
and PUTs the bytes there. Without a service, for a file above its size limit, or if any step
fails, the message carries the bridge's signed media link instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import aiohttp
from slixmpp import JID, Message
from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.contract.connector import MediaError
from bridgekit.contract.events import MessageContent

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
from .stanza_errors import error_condition, stanza_error

if TYPE_CHECKING:
    from .connector import XMPPConnector

#: The cap of a Matrix download for an upload service that states no limit (bytes).
UNBOUNDED_DOWNLOAD = 1 << 30

log = logging.getLogger("bridgekit.xmpp.outbound")

RETRACT_NS = "urn:xmpp:message-retract:1"
HINTS_NS = "urn:xmpp:hints"
RETRACT_FALLBACK = (
    "This person attempted to retract a previous message, but it's unsupported by your client."
)


UPLOAD_NS = "urn:xmpp:http:upload:0"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS_NS = "http://jabber.org/protocol/disco#items"
DATA_NS = "jabber:x:data"
#: The only PUT headers XEP-0363 lets a service ask for; anything else is dropped.
UPLOAD_HEADERS = {"authorization", "cookie", "expires"}
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")


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
        self.upload = HttpUpload(connector)

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
        condition, text = stanza_error(msg)
        fut = self._pending.get((frm, msg["id"]))
        if fut is not None and not fut.done():
            fut.set_exception(SendError(condition, text))
            return
        log.info(
            "XMPP error from %s for message %s: %s %s", msg["from"], msg["id"], condition, text
        )


@dataclass
class UploadService:
    jid: str
    max_size: int | None  # bytes, None when the service does not say


class UploadError(Exception):
    """One upload failed: the caller falls back to the bridge's media link."""


def _upload_max_size(info: ET.Element) -> int | None:
    for form in info.iter(f"{{{DATA_NS}}}x"):
        fields = {f.get("var"): f.findtext(f"{{{DATA_NS}}}value") for f in form}
        if fields.get("FORM_TYPE") == UPLOAD_NS and fields.get("max-file-size"):
            try:
                return int(str(fields["max-file-size"]))
            except ValueError:
                return None
    return None


def upload_filename(name: str) -> str:
    """A name the upload service accepts ('/' is refused) and a URL can carry."""
    cleaned = _UNSAFE_FILENAME.sub("_", clean_text(name)).strip(". ") or "file"
    return cleaned[-120:]


class HttpUpload:
    """The server's XEP-0363 service: found once per connection, then used for Matrix media."""

    def __init__(self, connector: XMPPConnector) -> None:
        self.connector = connector
        self._service: UploadService | None = None
        self._known = False
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        """The connection changed: the server may offer another service (or none) now."""
        self._known = False

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        return self._http

    async def service(self) -> UploadService | None:
        if not self.connector.setting("http_upload"):
            return None
        async with self._lock:
            if not self._known and self.connector.component.online.is_set():
                self._service = await self._discover()
                self._known = True
                if self._service is not None:
                    log.info(
                        "XMPP upload service %s (max %s bytes)",
                        self._service.jid,
                        self._service.max_size,
                    )
        return self._service

    async def _query(self, to: str, ns: str) -> ET.Element | None:
        xmpp = self.connector.component
        iq = xmpp.make_iq_get(ito=to, ifrom=self.connector.component_jid)
        ET.SubElement(iq.xml, f"{{{ns}}}query")
        try:
            result = await iq.send(timeout=10)
        except (IqError, IqTimeout):
            return None
        return result.xml.find(f"{{{ns}}}query")

    async def _discover(self) -> UploadService | None:
        configured = str(self.connector.setting("upload_service"))
        if configured:
            candidates = [configured]
        else:
            # The server's domain: the component's parent (matrix.example.org -> example.org).
            own = self.connector.component_jid
            domain = own.split(".", 1)[1] if "." in own else own
            items = await self._query(domain, DISCO_ITEMS_NS)
            found = [
                str(item.get("jid"))
                for item in (items if items is not None else [])
                if item.get("jid") and not item.get("node") and item.get("jid") != own
            ]
            candidates = [domain, *found]
        for jid in candidates:
            info = await self._query(jid, DISCO_INFO_NS)
            if info is None:
                continue
            features = {f.get("var") for f in info.findall(f"{{{DISCO_INFO_NS}}}feature")}
            if UPLOAD_NS in features:
                return UploadService(jid, _upload_max_size(info))
        return None

    async def _download(self, mxc: str, link: str, limit: int | None) -> bytes:
        """The media's bytes, fetched with the bridge's own Matrix token; at most ``limit``."""
        data: bytes | None = None
        try:
            data, _ = await self.connector.bridge.download_media(
                mxc, limit if limit is not None else UNBOUNDED_DOWNLOAD
            )
        except MediaError as e:
            raise UploadError(str(e)) from None
        except NotImplementedError:
            pass  # a runtime without it: the signed link below
        if data is None:
            # The bridge's signed link is served by the bridge itself, which fetches the
            # media from the homeserver with the appservice token (authenticated media).
            async with self.http.get(link) as resp:
                if resp.status != 200:
                    raise UploadError(f"media download answered {resp.status}")
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise UploadError(f"larger than the upload limit ({limit} bytes)")
                    chunks.append(chunk)
                data = b"".join(chunks)
        if limit is not None and len(data) > limit:
            raise UploadError(f"larger than the upload limit ({limit} bytes)")
        return data

    async def _slot(
        self, service: UploadService, frm: str, filename: str, size: int, mime: str
    ) -> tuple[str, dict[str, str], str]:
        xmpp = self.connector.component
        iq = xmpp.make_iq_get(ito=service.jid, ifrom=frm)
        ET.SubElement(
            iq.xml,
            f"{{{UPLOAD_NS}}}request",
            {"filename": filename, "size": str(size), "content-type": clean_text(mime)},
        )
        try:
            result = await iq.send(timeout=15)
        except IqError as e:
            raise UploadError(f"slot refused: {error_condition(e.iq)}") from e
        except IqTimeout as e:
            raise UploadError("the upload service did not answer") from e
        slot = result.xml.find(f"{{{UPLOAD_NS}}}slot")
        put = slot.find(f"{{{UPLOAD_NS}}}put") if slot is not None else None
        get = slot.find(f"{{{UPLOAD_NS}}}get") if slot is not None else None
        put_url = put.get("url") if put is not None else None
        get_url = get.get("url") if get is not None else None
        if not put_url or not get_url or not get_url.startswith(("https://", "http://")):
            raise UploadError("malformed slot")
        headers = {
            str(h.get("name")): (h.text or "").replace("\n", "").replace("\r", "")
            for h in put.findall(f"{{{UPLOAD_NS}}}header")  # type: ignore[union-attr]
            if str(h.get("name", "")).lower() in UPLOAD_HEADERS
        }
        return put_url, headers, get_url

    async def share(
        self, frm: str, mxc: str, link: str, filename: str, info: dict[str, Any]
    ) -> str:
        """The URL XMPP users get for Matrix media: on the upload service, else ``link``."""
        try:
            service = await self.service()
            if service is None:
                return link
            limit = service.max_size
            hinted = info.get("size")
            if limit is not None and isinstance(hinted, int) and hinted > limit:
                raise UploadError(f"{hinted} bytes, the upload limit is {limit}")
            data = await self._download(mxc, link, limit)
            mime = info.get("mimetype")
            mime = mime if isinstance(mime, str) and "/" in mime else "application/octet-stream"
            put_url, headers, get_url = await self._slot(
                service, frm, upload_filename(filename), len(data), mime
            )
            headers["Content-Type"] = mime
            async with self.http.put(put_url, data=data, headers=headers) as resp:
                if resp.status not in (200, 201):
                    raise UploadError(f"PUT answered {resp.status}")
            return get_url
        except (UploadError, aiohttp.ClientError, TimeoutError) as e:
            log.info("Sharing %s as the bridge's link instead of an upload: %s", mxc, e)
            return link
