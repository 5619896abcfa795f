"""XEP-0313 history: what a MUC said while the bridge was away.

After a restart or a reconnect the runtime asks each portal's listener for the messages after
the last one it bridged (``BackfillHandler.fetch_messages``, forward); the room's archive
answers with the messages after that stanza-id. A portal room the runtime creates asks for the
newest ones (backward, an empty RSM ``<before/>``), page by page. Results arrive as
``<message><result>`` stanzas before the iq result: the connector hands them to
:class:`ArchiveCollector` as they come in.

While a room's catch-up is due or running, what the room says live must not reach Matrix
before what it said earlier: :class:`CatchUps` holds the room's live messages from the moment
its listener (re)joins until its archive has been read, then hands them back in order, minus
those the archive already returned (the same stanza-id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container
from datetime import datetime
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from slixmpp import Message
from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.contract.connector import FORWARD, FetchResult
from bridgekit.contract.events import RemoteMessage

from .jid import clean_text
from .muc_room import RESOURCE
from .stanza_errors import error_condition

if TYPE_CHECKING:
    from .client import XMPPClient
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.mam")

MAM_NS = "urn:xmpp:mam:2"
RSM_NS = "http://jabber.org/protocol/rsm"
FORWARD_NS = "urn:xmpp:forward:0"
DELAY_NS = "urn:xmpp:delay"
SID_NS = "urn:xmpp:sid:0"
PAGE = 50
#: Seconds a room's live messages wait for its catch-up to start, then to finish: a bound
#: so that a catch-up that never comes only delays them.
START_TIMEOUT = 10.0
RUN_TIMEOUT = 120.0


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


class CatchUps:
    """Rooms whose archive catch-up is due or running, and their live messages meanwhile."""

    def __init__(self, release: Callable[[list[Message]], None]) -> None:
        self._release = release
        self.expected: dict[str, set[str]] = {}  # login id -> rooms it is to catch up
        self.held: dict[str, tuple[str, list[Message]]] = {}  # room -> (login id, messages)
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def expect(self, login_id: str, rooms: set[str]) -> None:
        """``login_id`` came online: the runtime will ask it to catch up on these rooms."""
        self.expected[login_id] = set(rooms)

    def joining(self, login_id: str, room: str) -> None:
        """The room's listener is (re)joining: live messages start now, hold them."""
        if room in self.expected.get(login_id, ()) and room not in self.held:
            self.held[room] = (login_id, [])
            self._arm(room, START_TIMEOUT)

    def started(self, login_id: str, room: str) -> None:
        held = self.held.get(room)
        if held is not None and held[0] == login_id:
            self._arm(room, RUN_TIMEOUT)

    def offer(self, msg: Message, ours: Container[str]) -> bool:
        """Hold ``msg`` if its room is catching up (True). Our own echoes are never held."""
        held = self.held.get(msg["from"].bare)
        if held is None or msg["type"] != "groupchat" or msg["from"].resource in ours:
            return False
        held[1].append(msg)
        return True

    def finish(self, login_id: str, room: str, archived: set[str]) -> None:
        """``login_id``'s catch-up of ``room`` is over: its held messages may go on."""
        self.expected.get(login_id, set()).discard(room)
        held = self.held.get(room)
        if held is None or held[0] != login_id:
            return
        # Not now: the runtime queues the archived messages right after fetch_messages
        # returns, and they must be stored before these.
        asyncio.get_running_loop().call_soon(self._flush, room, archived)

    def reset(self) -> None:
        """The connection is gone, and the room occupancies with it. What was held is in the
        rooms' archives (it has not been bridged), so the next catch-up brings it."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.held.clear()
        self.expected.clear()

    def _arm(self, room: str, delay: float) -> None:
        timer = self._timers.pop(room, None)
        if timer is not None:
            timer.cancel()
        self._timers[room] = asyncio.get_running_loop().call_later(delay, self._expire, room)

    def _expire(self, room: str) -> None:
        self._timers.pop(room, None)
        held = self.held.get(room)
        if held is not None:
            log.warning("The catch-up of %s did not end in time: live messages go on", room)
            self.expected.get(held[0], set()).discard(room)
            self._flush(room, set())

    def _flush(self, room: str, archived: set[str]) -> None:
        timer = self._timers.pop(room, None)
        if timer is not None:
            timer.cancel()
        _, messages = self.held.pop(room, ("", []))
        fresh = [m for m in messages if room_stanza_id(m, room) not in archived]
        if len(fresh) < len(messages):
            log.info("%d live messages of %s were in its archive", len(messages) - len(fresh), room)
        if fresh:
            self._release(fresh)


def room_stanza_id(msg: Message, room: str) -> str | None:
    for el in msg.xml.findall(f"{{{SID_NS}}}stanza-id"):
        if el.get("by") == room:
            return el.get("id")
    return None


async def archive_page(
    connector: XMPPConnector,
    client: XMPPClient,
    room: str,
    direction: str,
    position: str | None,
    limit: int,
    seen: set[str] | None = None,
) -> FetchResult:
    """One page of the room's archive (XEP-0313 with RSM), oldest first: ``FORWARD``, the
    messages after archive id ``position``; ``BACKWARD``, the newest before it (None: the
    newest of all). The cursor is the page's edge in the archive, past what was not a plain
    message (a correction, a reaction), so that the next page does not ask for it again.
    Every archive id seen is added to ``seen``."""
    xmpp = connector.component
    collector = connector.archive
    room_state = connector.muc.rooms.get(room)
    ours = set(room_state.ours) if room_state else set()
    query_id = xmpp.new_id()
    collector.results[query_id] = []
    iq = xmpp.make_iq_set(ito=room, ifrom=f"{client.jid}/{RESOURCE}")
    query = ET.SubElement(iq.xml, f"{{{MAM_NS}}}query", {"queryid": query_id})
    rsm = ET.SubElement(query, f"{{{RSM_NS}}}set")
    ET.SubElement(rsm, f"{{{RSM_NS}}}max").text = str(max(1, min(PAGE, limit)))
    if direction == FORWARD:
        ET.SubElement(rsm, f"{{{RSM_NS}}}after").text = position or ""
    else:  # an empty <before/> is the last page (XEP-0059 2.5)
        ET.SubElement(rsm, f"{{{RSM_NS}}}before").text = position or None
    try:
        result = await iq.send(timeout=20)
    except IqError as e:
        log.warning(
            "Archive of %s refused the query (%s %s): %s",
            room,
            direction,
            position,
            error_condition(e.iq),
        )
        return FetchResult(cursor=position)
    except IqTimeout:
        log.warning("Archive of %s did not answer", room)
        return FetchResult(cursor=position)
    finally:
        items = collector.results.pop(query_id, [])
    out: list[RemoteMessage] = []
    for archive_id, frm, inner, ts in items:
        if frm != room:
            continue
        if seen is not None:
            seen.add(archive_id)
        stanza = Message(xml=inner)
        converted = await connector.inbound.archived(room, archive_id, stanza, ts, ours)
        if converted is not None:
            out.append(converted)
    fin = result.xml.find(f"{{{MAM_NS}}}fin")
    edge = "last" if direction == FORWARD else "first"
    found = fin.findtext(f"{{{RSM_NS}}}set/{{{RSM_NS}}}{edge}") if fin is not None else None
    cursor = clean_text(found) if found else position
    more = bool(fin is not None and fin.get("complete") != "true" and items and found)
    if out:
        log.info("Fetched %d archived messages of %s (%s)", len(out), room, direction)
    return FetchResult(out[-limit:], cursor=cursor, has_more=more)
