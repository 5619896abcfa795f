"""How far a Matrix message got onto IRC, durably, so a restart neither loses nor repeats lines.

IRC has no message ids to deduplicate by. Before each burst of lines goes out, the connection
commits a marker naming where in the message's text the burst ends (the event id, that offset
and a digest of the text up to it; one key per login and chat, in the group commit). A message
that comes back after a crash (``maybe_sent``) sends only the text after the offset, split
afresh: an offset, unlike a line number, still holds when the text splits differently after the
restart (the bridge's host, and so the room for text on a line, may have changed).
"""

from __future__ import annotations

import hashlib
import logging

log = logging.getLogger("bridgekit.irc.progress")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def progress_value(event_id: str, end: int, text: str) -> str:
    """The marker for "``text[:end]`` of ``event_id`` is (about to be) written"."""
    return f"{event_id} {end} {digest(text[:end])}"


def resume_offset(value: str | None, event_id: str, text: str) -> int:
    """Where in ``text`` (the message rendered again) to go on, by the marker ``value``."""
    if not value:
        return 0
    parts = value.rsplit(" ", 2)
    if len(parts) != 3:
        # The form before per-line markers: the event id alone, set before the first line;
        # the message counts as written, as it did then.
        return len(text) if value == event_id else 0
    marked, end_text, mark = parts
    if marked != event_id:
        return 0
    try:
        end = int(end_text)
    except ValueError:
        return 0
    end = max(0, min(end, len(text)))
    if digest(text[:end]) != mark:
        # Rendered differently now (a mentioned nick changed): the offset is the best guess.
        log.warning("%s reads differently since the restart: resuming at %d", event_id, end)
    return end


def line_ends(text: str, chunks: list[str], base: int = 0) -> list[int]:
    """Per chunk split from ``text``: the offset just past it, plus ``base``."""
    ends, cursor = [], 0
    for chunk in chunks:
        at = text.find(chunk, cursor)
        # Not found only where the splitter repaired lone surrogates: about there.
        cursor = min(len(text), cursor + len(chunk)) if at < 0 else at + len(chunk)
        ends.append(base + cursor)
    return ends
