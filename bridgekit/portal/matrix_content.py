"""What a Matrix event's content says, in the network's terms: a message's text without the
reply fallback clients quote, its reply and thread as remote ids, and which users' power levels
a ``m.room.power_levels`` change moved (for :mod:`.matrix_to_remote`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..contract.events import MessageContent
from ..matrix.encrypted_media import KEYS, parse_file
from ..matrix.fields import relation

if TYPE_CHECKING:
    from ..database.store import Store
    from ..objects.portal import Portal

_REPLY_HTML_RE = re.compile(r"<mx-reply>.*?</mx-reply>", re.DOTALL)
_MIME_RE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


def strip_reply_fallback(body: str, html: str | None) -> tuple[str, str | None]:
    """Remove the quoted text clients put in replies (it would leak and duplicate)."""
    if body.startswith("> "):
        lines = body.split("\n")
        while lines and lines[0].startswith(">"):
            lines.pop(0)
        if lines and lines[0] == "":
            lines.pop(0)
        body = "\n".join(lines)
    if html:
        html = _REPLY_HTML_RE.sub("", html)
    return body, html


async def to_content(store: Store, portal: Portal, content: dict[str, Any]) -> MessageContent:
    """A Matrix message's content for the network: the reply fallback stripped, the replied-to
    and thread root messages named by their remote ids (when this portal bridged them)."""
    body = content.get("body") if isinstance(content.get("body"), str) else ""
    html = (
        content.get("formatted_body") if content.get("format") == "org.matrix.custom.html" else None
    )
    rel = relation(content)
    reply_event = rel.reply_to
    if reply_event and not rel.is_falling_back:
        body, html = strip_reply_fallback(body, html if isinstance(html, str) else None)
    mc = MessageContent(body=body, html=html if isinstance(html, str) else None)
    msgtype = content.get("msgtype", "m.text")
    mc.msgtype = msgtype if isinstance(msgtype, str) else "m.text"
    info = content.get("info") if isinstance(content.get("info"), dict) else {}
    if isinstance(content.get("url"), str):
        mc.media_url = content["url"]
        mc.media_info = info
    elif "file" in content:  # an encrypted room's attachment: its keys kept for the download
        file = parse_file(content["file"])
        if file is not None:
            mime = info.get("mimetype")
            if isinstance(mime, str) and _MIME_RE.match(mime):
                file["mimetype"] = mime
            KEYS.remember(file)
            mc.media_url, mc.media_info = file["url"], info
    if reply_event and not rel.is_falling_back:
        row = await store.message_in_portal(portal.network, portal.key, reply_event)
        if row:
            mc.reply_to = row.remote_id
    if rel.rel_type == "m.thread" and rel.event_id:
        row = await store.message_in_portal(portal.network, portal.key, rel.event_id)
        if row:
            mc.thread_root = row.remote_id
    return mc


def _level(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def power_level_changes(evt: dict[str, Any], bot_mxid: str) -> dict[str, int]:
    """``{user: new level}`` for every user whose level differs from the previous state."""
    content = evt.get("content") or {}
    unsigned = evt.get("unsigned")
    prev = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
    prev = prev if isinstance(prev, dict) else {}
    users = content.get("users") if isinstance(content.get("users"), dict) else {}
    prev_users = prev.get("users") if isinstance(prev.get("users"), dict) else {}
    default = _level(content.get("users_default"), 0)
    prev_default = _level(prev.get("users_default"), 0)
    changed: dict[str, int] = {}
    for user in {*users, *prev_users}:
        if not isinstance(user, str) or user == bot_mxid:
            continue
        new = _level(users.get(user), default)
        if new != _level(prev_users.get(user), prev_default):
            changed[user] = new
    return changed
