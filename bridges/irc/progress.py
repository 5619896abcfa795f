"""How far a Matrix message got onto IRC, durably, so a restart neither loses nor repeats lines.

IRC has no message ids to deduplicate by. Before each burst of lines goes out, the connection
commits a marker naming the last line of the burst (the event id, that line's index and a digest
of its text; one key per login and chat, in the group commit). A message that comes back after
a crash (``maybe_sent``) resumes at the line after the marked one. The digest finds the marked
line again if the message splits differently after the restart (the bridge's host, and so the
room for text on a line, may have changed).
"""

from __future__ import annotations

import hashlib
import logging

log = logging.getLogger("bridgekit.irc.progress")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def progress_value(event_id: str, index: int, text: str | None) -> str:
    """The marker for "lines up to ``index`` of ``event_id`` are (about to be) written";
    ``index`` -1: none of them."""
    return f"{event_id} {index} {digest(text) if text is not None else '-'}"


def resume_from(value: str | None, event_id: str, texts: list[str]) -> int:
    """The first line of ``texts`` still to send, by the marker ``value``."""
    if not value:
        return 0
    parts = value.rsplit(" ", 2)
    if len(parts) != 3:
        # The form before per-line markers: just the event id, set before its first line.
        return 1 if value == event_id else 0
    marked, index_text, mark = parts
    if marked != event_id:
        return 0
    try:
        index = int(index_text)
    except ValueError:
        return 0
    if index < 0:
        return 0
    if index < len(texts) and digest(texts[index]) == mark:
        return index + 1
    same = [i for i, text in enumerate(texts) if digest(text) == mark]
    if same:
        return min(same, key=lambda i: abs(i - index)) + 1
    log.warning("%s splits differently since the restart: resuming after line %d", event_id, index)
    return min(index + 1, len(texts))
