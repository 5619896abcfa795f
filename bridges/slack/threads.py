"""Slack threads <-> Matrix threads (``m.thread``), both ways.

Slack -> Matrix: a reply in a thread (``thread_ts`` other than its own ``ts``) names its root
in ``content.thread_root``; the runtime sends it as an ``m.thread`` event rooted at the
bridged parent (in the main timeline when the parent was never bridged). A reply also sent to
the channel (subtype ``thread_broadcast``, "also send to channel") must be seen in both
places, as on Slack: it becomes one message in two parts, the first in the thread, the second
(part ``channel``) in the main timeline as a reply to the root. Edits reach both parts, a
delete removes both (mautrix-slack #14 and matrix-appservice-slack #672 lost these).

Matrix -> Slack: an ``m.thread`` message, and a reply inside a thread, go to the thread of its
root (``thread_ts``). A reply in the main timeline is a thread reply on Slack (Slack has no
other replies), under the thread of the message replied to (its own, or the one it is in),
and also sent to the channel (``reply_broadcast``), because on Matrix it was said in the
main timeline where everyone sees it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from bridgekit.contract.events import (
    MatrixMessage,
    MessageContent,
    MessagePart,
    RemoteMessage,
    RemoteMessageID,
)

#: The part of a broadcast thread reply shown in the main timeline.
CHANNEL_PART = "channel"

_TS_RE = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}$")


def thread_root(event: dict[str, Any]) -> RemoteMessageID | None:
    """The root of the thread a Slack message is a reply in (None for a root or a plain
    message: a root carries ``thread_ts`` equal to its own ``ts``)."""
    thread_ts = event.get("thread_ts")
    if isinstance(thread_ts, str) and thread_ts and thread_ts != event.get("ts"):
        return RemoteMessageID(thread_ts)
    return None


def is_broadcast(event: dict[str, Any]) -> bool:
    return event.get("subtype") == "thread_broadcast" and thread_root(event) is not None


def broadcast_parts(event: dict[str, Any], msg: RemoteMessage) -> RemoteMessage:
    """A broadcast reply: its parts again in the thread, then its text in the main timeline
    (a reply to the root there, so the channel sees what it answers)."""
    if not is_broadcast(event):
        return msg
    root = thread_root(event)
    parts = msg.message_parts()
    first = parts[0].content
    visible = MessageContent(first.body, first.html, first.msgtype, reply_to=root)
    msg.parts = [*parts, MessagePart(CHANNEL_PART, visible)]
    return msg


def channel_copy(content: MessageContent) -> MessageContent:
    """An edit's new content for the main-timeline part of a broadcast."""
    return dataclasses.replace(content, thread_root=None, reply_to=None)


def _ts(value: str | None) -> str | None:
    """A Slack message ts, or None (a message the runtime recorded without one)."""
    return value if value and _TS_RE.match(value) else None


def post_args(msg: MatrixMessage) -> dict[str, Any]:
    """``chat.postMessage`` arguments placing a Matrix message in its Slack thread."""
    content = msg.content
    if content.thread_root:
        root = _ts(content.thread_root)
        return {"thread_ts": root} if root else {}
    if content.reply_to:
        root = _ts(msg.reply_to_thread) or _ts(content.reply_to)
        return {"thread_ts": root, "reply_broadcast": True} if root else {}
    return {}
