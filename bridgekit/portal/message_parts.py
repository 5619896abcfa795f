"""Remote messages in parts: one remote message sent to Matrix as several events.

A network message with text and attachments (one Slack message with three files, an XMPP
body with an out-of-band URL) becomes one Matrix event per part
(:attr:`~bridgekit.contract.events.RemoteMessage.parts`), in order, each recorded as
(network, portal, remote id, part id) -> event id in the ``message`` table. It stays one
message: a remote reply, reaction or receipt lands on its first part, a remote edit on the
part it names, a remote redaction removes every part; on Matrix, a reply, reaction, edit or
redaction of any part names the one remote message (each row carries its remote id).

Crash safety: every part goes out with a transaction id derived from the outbox sequence
number and its index, and its row is written as soon as it is sent, except the first part's,
which is written last. Only that row makes the message known (echo and duplicate detection,
:meth:`~bridgekit.database.messages.MessageTable.known_remote_ids`), so the outbox replaying
the event after a crash between parts finds it incomplete and sends only the parts that have no
row; the first part goes out again with its own transaction id, which the homeserver answers
with the event it already has instead of posting it twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mautrix.errors import MatrixRequestError

from ..contract.events import RemoteEdit, RemoteMessage, RemoteRedaction
from ..database.records import MessageRow
from ..matrix.client import with_retries

if TYPE_CHECKING:
    from ..database.store import Portal
    from .portals import PortalService

log = logging.getLogger("bridgekit.portal.portals")


async def send_message(
    svc: PortalService,
    portal: Portal,
    login_id: str | None,
    evt: RemoteMessage,
    txn_id: str,
    remote_id: str,
) -> None:
    """Send a remote message known to be new (or, after a crash, the parts it still lacks),
    recorded under ``remote_id``; ``txn_id`` is its first part's transaction id."""
    parts = evt.message_parts()
    done: set[str] = set()
    if len(parts) > 1:
        rows = await svc.bridge.store.message_parts(portal.network, portal.key, remote_id)
        done = {row.part for row in rows}
        if "" in done:
            return  # complete: its first part is recorded last
    intent = await svc.sender_intent(portal, evt.sender, login_id)
    first = None
    for i, part in enumerate(parts):
        if part.id in done:
            continue  # sent before a crash
        content = await svc._message_content(portal, part.content)
        event_id = await svc._send(
            intent,
            portal,
            "m.room.message",
            content,
            txn_id if i == 0 else f"{txn_id}p{i}",
            evt.timestamp,
        )
        if i == 0:
            first = (event_id, content)
        else:
            await svc._remember(portal, remote_id, event_id, intent, evt, content, part=part.id)
    if first is not None:
        await svc._remember(portal, remote_id, first[0], intent, evt, first[1])


async def edit_target(svc: PortalService, portal: Portal, evt: RemoteEdit) -> MessageRow | None:
    """The event a remote edit replaces: the part it names, else the message's first part."""
    store = svc.bridge.store
    if evt.target_part:
        return await store.message_by_remote(
            portal.network, portal.key, evt.target_id, evt.target_part
        )
    return await store.message_by_remote(portal.network, portal.key, evt.target_id)


async def redact_message(
    svc: PortalService, portal: Portal, login_id: str | None, evt: RemoteRedaction
) -> None:
    """Redact every Matrix event a remote message was sent as, and forget them."""
    store = svc.bridge.store
    target = await store.message_by_remote(portal.network, portal.key, evt.target_id)
    if target is None:
        return
    rows = await store.message_parts(portal.network, portal.key, target.remote_id)
    if not any(row.event_id == target.event_id for row in rows):
        rows.append(target)  # not committed yet (see MessageTable._pending_by_remote)
    intent = await svc.sender_intent(portal, evt.sender, login_id)
    room_id, bot = portal.mxid, svc.bridge.matrix.bot
    assert room_id and bot is not None
    for row in rows:
        event_id = row.event_id
        try:
            await with_retries(
                lambda e=event_id: intent.redact(room_id, e, reason=evt.reason),
                what="redacting",
            )
        except MatrixRequestError:  # the ghost may not redact it (not its own): the bot does
            await with_retries(
                lambda e=event_id: bot.redact(room_id, e, reason=evt.reason),
                what="redacting",
            )
        await store.delete_message(event_id)
