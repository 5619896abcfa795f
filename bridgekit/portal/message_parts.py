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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mautrix.errors import MatrixRequestError

from ..contract.connector import MediaError
from ..contract.events import MessageContent, RemoteEdit, RemoteMessage, RemoteRedaction
from ..database.records import MessageRow
from ..matrix.client import with_retries

if TYPE_CHECKING:
    from mautrix.appservice import IntentAPI

    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from ..objects.portal import Portal
    from .puppets import Puppets

log = logging.getLogger("bridgekit.portal.portals")


class PartSender(Protocol):
    """What sending a message's parts uses of :class:`~.remote_to_matrix.RemoteToMatrix`
    (a protocol: that module calls this one, so this one does not import it)."""

    store: Store
    matrix: MatrixClient
    puppets: Puppets
    ghost_mxid: Callable[[str, str], str]

    async def _send(
        self,
        intent: IntentAPI,
        portal: Portal,
        etype: str,
        content: dict[str, Any],
        txn_id: str,
        ts: float | None,
    ) -> str: ...

    async def _remember(
        self,
        portal: Portal,
        remote_id: str,
        event_id: str,
        intent: IntentAPI,
        evt: RemoteMessage,
        content: dict[str, Any],
        part: str = "",
        extra_ids: list[str] | None = None,
    ) -> None: ...


def _link_instead(body: str, url: str, why: str) -> dict[str, Any]:
    """A remote file the fetcher would not bring over: its link as text, and why."""
    caption = body if body and body != "file" and body not in url else ""
    text = f"{caption}\n{url}" if caption else url
    return {"msgtype": "m.text", "body": f"{text}\n(not bridged as a file: {why})"}


async def _encrypted(svc: PartSender, portal: Portal) -> bool:
    encryptor = svc.matrix.encryptor
    return bool(
        encryptor is not None and portal.mxid and await encryptor.encryption_of(portal.mxid)
    )


async def _encrypted_thumbnail(svc: PartSender, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` for an encrypted room: a thumbnail is an encrypted attachment too."""
    thumb = info.get("thumbnail_url")
    if not isinstance(thumb, str):
        return info
    info = {k: v for k, v in info.items() if k != "thumbnail_url"}
    try:
        info["thumbnail_file"] = await svc.puppets.to_encrypted_file(thumb, "thumbnail")
    except MediaError as e:  # the file without its thumbnail (or a connector's as it is)
        log.info("Thumbnail %s not encrypted: %s", thumb, e)
        if thumb.startswith("mxc://"):
            info["thumbnail_url"] = thumb
        else:
            info.pop("thumbnail_info", None)
    return info


async def matrix_content(svc: PartSender, portal: Portal, mc: MessageContent) -> dict[str, Any]:
    """A remote message's content as Matrix content: media copied, replies, threads and
    mentions resolved through the message map."""
    content: dict[str, Any] = {"msgtype": mc.msgtype, "body": mc.body}
    if mc.html:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = mc.html
    if mc.media_url:
        try:
            if await _encrypted(svc, portal):  # no plaintext in the media repository
                try:
                    content["file"] = await svc.puppets.to_encrypted_file(
                        mc.media_url, mc.body or "file"
                    )
                except MediaError:
                    if not mc.media_url.startswith("mxc://"):
                        raise
                    # Uploaded by the connector (in plaintext already) and too large to copy
                    # encrypted: the file as it is rather than no file.
                    content["url"] = mc.media_url
                info = await _encrypted_thumbnail(svc, mc.media_info)
            else:
                content["url"] = await svc.puppets.to_mxc(mc.media_url, mc.body or "file")
                info = mc.media_info
            if info:
                content["info"] = info
        except MediaError as e:  # the bare link, and why it is not the file itself
            content = _link_instead(mc.body, mc.media_url, str(e))
    relates: dict[str, Any] = {}
    reply_row = thread_row = None
    if mc.reply_to:
        reply_row = await svc.store.message_by_remote(portal.network, portal.key, mc.reply_to)
    if mc.thread_root:
        thread_row = await svc.store.message_by_remote(portal.network, portal.key, mc.thread_root)
    if thread_row:
        relates = {
            "rel_type": "m.thread",
            "event_id": thread_row.event_id,
            "is_falling_back": reply_row is None,
            "m.in_reply_to": {"event_id": (reply_row or thread_row).event_id},
        }
    elif reply_row:
        relates = {"m.in_reply_to": {"event_id": reply_row.event_id}}
    if relates:
        content["m.relates_to"] = relates
    # A full MXID (a Matrix user's puppet mentioned on the network) passes through as is.
    mentions = [
        m if m.startswith("@") and ":" in m else svc.ghost_mxid(m, portal.network)
        for m in mc.mentions
    ]
    if reply_row and reply_row.sender_mxid not in mentions:
        mentions.append(reply_row.sender_mxid)
    content["m.mentions"] = {"user_ids": mentions} if mentions else {}
    if mc.mentions_room:
        content["m.mentions"]["room"] = True
    return content


async def send_message(
    svc: PartSender,
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
        rows = await svc.store.message_parts(portal.network, portal.key, remote_id)
        done = {row.part for row in rows}
        if "" in done:
            return  # complete: its first part is recorded last
    intent = await svc.puppets.sender_intent(portal, evt.sender, login_id)
    first = None
    for i, part in enumerate(parts):
        if part.id in done:
            continue  # sent before a crash
        content = await matrix_content(svc, portal, part.content)
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


async def edit_target(svc: PartSender, portal: Portal, evt: RemoteEdit) -> MessageRow | None:
    """The event a remote edit replaces: the part it names, else the message's first part."""
    store = svc.store
    if evt.target_part:
        return await store.message_by_remote(
            portal.network, portal.key, evt.target_id, evt.target_part
        )
    return await store.message_by_remote(portal.network, portal.key, evt.target_id)


async def redact_message(
    svc: PartSender, portal: Portal, login_id: str | None, evt: RemoteRedaction
) -> None:
    """Redact every Matrix event a remote message was sent as, and forget them."""
    store = svc.store
    target = await store.message_by_remote(portal.network, portal.key, evt.target_id)
    if target is None:
        return
    rows = await store.message_parts(portal.network, portal.key, target.remote_id)
    if not any(row.event_id == target.event_id for row in rows):
        rows.append(target)  # not committed yet (see MessageTable._pending_by_remote)
    intent = await svc.puppets.sender_intent(portal, evt.sender, login_id)
    room_id, bot = portal.mxid, svc.matrix.bot
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
