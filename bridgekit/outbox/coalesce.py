"""Merging a backlog of short lines from one sender into one Matrix event.

A homeserver takes tens of milliseconds to persist one event and a portal's events must go out
one after another to keep their order, so a room where someone pastes twenty IRC lines falls
behind by seconds. Where a connector allows it (:attr:`NetworkConnector.merge_backlog`),
consecutive plain messages of one sender that are *already waiting* in the portal's queue are
sent as one event, lines joined by newlines. A message that arrives while the room is idle is
sent at once. Only a line that continues a fast stream of its sender's lines (a paste, a bot)
may wait, briefly, for the rest (:class:`bridgekit.outbox.remote_queue.StreamHold`).

Every merged remote id still maps to the event (the first as the message, the others as
aliases), so a later reply or reaction to any of the lines finds it.
"""

from __future__ import annotations

import html
from dataclasses import replace

from ..contract.events import MessageContent, RemoteMessage

#: Message types that merge: each line stays readable as a line of the merged text.
MERGEABLE_MSGTYPES = frozenset({"m.text", "m.notice"})
MAX_LINES = 30
MAX_BODY = 8000
#: Lines further apart than this (by their remote timestamps) stay separate events, so the
#: Matrix timeline does not misstate when they were said.
MAX_SPAN_SECONDS = 5.0


def mergeable(first: RemoteMessage, nxt: RemoteMessage, lines: int, size: int) -> bool:
    """Whether ``nxt`` may be appended to a merge that starts with ``first``.

    ``lines`` and ``size`` are the merge's current line count and body length.
    """
    if type(first) is not RemoteMessage or type(nxt) is not RemoteMessage:
        return False
    if first.parts or nxt.parts:  # a message in parts is several events already
        return False
    a, b = first.content, nxt.content
    if first.sender is None or nxt.sender is None or first.sender != nxt.sender:
        return False
    if a.msgtype not in MERGEABLE_MSGTYPES or b.msgtype != a.msgtype:
        return False
    if a.media_url or b.media_url or b.reply_to or b.thread_root != a.thread_root:
        return False
    if lines >= MAX_LINES or size + 1 + len(b.body) > MAX_BODY:
        return False
    if first.timestamp is not None and nxt.timestamp is not None:
        if abs(nxt.timestamp - first.timestamp) > MAX_SPAN_SECONDS:
            return False
    return True


def merge_contents(contents: list[MessageContent]) -> MessageContent:
    """One content holding every line, in order; HTML only if some line had HTML."""
    first = contents[0]
    body = "\n".join(c.body for c in contents)
    formatted = None
    if any(c.html for c in contents):
        formatted = "<br>".join(
            c.html or html.escape(c.body).replace("\n", "<br>") for c in contents
        )
    mentions: list[str] = []
    for c in contents:
        mentions.extend(m for m in c.mentions if m not in mentions)
    room = any(c.mentions_room for c in contents)
    return replace(first, body=body, html=formatted, mentions=mentions, mentions_room=room)
