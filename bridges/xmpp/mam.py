"""XEP-0313 history: what a MUC said while the bridge was away.

After a restart or a reconnect the runtime asks each portal's listener for the messages after
the last one it bridged (``BackfillHandler.fetch_messages``); the room's archive answers with
the messages after that stanza-id. Results arrive as ``<message><result>`` stanzas before the
iq result: the connector hands them to :class:`ArchiveCollector` as they come in.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from slixmpp import Message
from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.events import RemoteMessage

from .jid import clean_text
from .muc import RESOURCE

if TYPE_CHECKING:
    from .client import XMPPClient
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.mam")

MAM_NS = "urn:xmpp:mam:2"
RSM_NS = "http://jabber.org/protocol/rsm"
FORWARD_NS = "urn:xmpp:forward:0"
DELAY_NS = "urn:xmpp:delay"
PAGE = 50


class ArchiveCollector:
    """Result messages of running archive queries, by query id."""

    def __init__(self) -> None:
        self.results: dict[str, list[tuple[str, str, ET.Element, float | None]]] = {}

    def offer(self, msg: Message) -> bool:
        """Take ``msg`` if it is an archive result (True), so it is not handled as a message."""
        result = msg.xml.find(f"{{{MAM_NS}}}result")
        if result is None:
            return False
        bucket = self.results.get(result.get("queryid", ""))
        forwarded = result.find(f"{{{FORWARD_NS}}}forwarded")
        if bucket is None or forwarded is None or not result.get("id"):
            return True  # not ours, or malformed: dropped
        inner = next(
            (el for el in forwarded if isinstance(el.tag, str) and el.tag.endswith("}message")),
            None,
        )
        if inner is None:
            return True
        ts = None
        delay = forwarded.find(f"{{{DELAY_NS}}}delay")
        if delay is not None and delay.get("stamp"):
            try:
                ts = datetime.fromisoformat(
                    delay.get("stamp", "").replace("Z", "+00:00")
                ).timestamp()
            except ValueError:
                ts = None
        bucket.append((clean_text(result.get("id", "")), msg["from"].bare, inner, ts))
        return True


async def fetch_room_archive(
    connector: XMPPConnector, client: XMPPClient, room: str, after: str, limit: int
) -> list[RemoteMessage]:
    xmpp = connector.component
    collector = connector.archive
    out: list[RemoteMessage] = []
    room_state = connector.muc.rooms.get(room)
    ours = set(room_state.ours) if room_state else set()
    cursor = after
    while len(out) < limit:
        query_id = xmpp.new_id()
        collector.results[query_id] = []
        iq = xmpp.make_iq_set(ito=room, ifrom=f"{client.jid}/{RESOURCE}")
        query = ET.SubElement(iq.xml, f"{{{MAM_NS}}}query", {"queryid": query_id})
        rsm = ET.SubElement(query, f"{{{RSM_NS}}}set")
        ET.SubElement(rsm, f"{{{RSM_NS}}}max").text = str(min(PAGE, limit - len(out)))
        ET.SubElement(rsm, f"{{{RSM_NS}}}after").text = cursor
        try:
            result = await iq.send(timeout=20)
        except IqError as e:
            log.warning(
                "Archive of %s refused the query after %s: %s",
                room,
                cursor,
                e.iq["error"]["condition"],
            )
            break
        except IqTimeout:
            log.warning("Archive of %s did not answer", room)
            break
        finally:
            items = collector.results.pop(query_id, [])
        for archive_id, frm, inner, ts in items:
            if frm != room:
                continue
            stanza = Message(xml=inner)
            converted = await connector.inbound.archived(room, archive_id, stanza, ts, ours)
            if converted is not None:
                out.append(converted)
        fin = result.xml.find(f"{{{MAM_NS}}}fin")
        last = fin.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}last") if fin is not None else None
        if fin is None or fin.get("complete") == "true" or not items or not last:
            break
        cursor = clean_text(last)
    if out:
        log.info("Fetched %d archived messages of %s", len(out), room)
    return out[:limit]
