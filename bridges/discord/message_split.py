"""Discord's 2000-character limit: a long message cut in pieces that each render on their
own (a code block cut in two is closed and opened again). Re-exported by
:mod:`.html_to_markdown`, whose output it is meant for."""

from __future__ import annotations

import re

__all__ = ["split_message"]

_FENCE_RE = re.compile(r"(?<!\\)```([A-Za-z0-9_+\-.#]*)")


def _fence_state(text: str, state: str | None) -> str | None:
    """After ``text``: the open code block's language ("" for none), or None when closed."""
    for match in _FENCE_RE.finditer(text):
        state = match.group(1) if state is None else None
    return state


def split_message(text: str, limit: int = 2000) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, at a line break if one is in
    reach, else at a space, else anywhere (not after a backslash); a code block cut in two is
    closed and opened again, so each piece renders on its own."""
    if limit < 40:
        raise ValueError("limit too small")
    pieces: list[str] = []
    fence: str | None = None  # the language of the code block open at the start of `text`
    while text:
        opener = f"```{fence}\n" if fence is not None else ""
        room = limit - len(opener) - len("\n```")
        if len(opener) + len(text) <= limit and _fence_state(text, fence) is None:
            pieces.append(opener + text)
            break
        cut = _cut_point(text, room)
        piece, text = text[:cut], text[cut:]
        after = _fence_state(piece, fence)
        out = opener + (piece.rstrip("\n") if after is not None else piece.rstrip("\n "))
        if after is not None:
            out += "\n```"
        if out.strip():
            pieces.append(out)
        fence = after
        text = text.lstrip("\n") if after is None else text
    return pieces


def _cut_point(text: str, room: int) -> int:
    if len(text) <= room:
        return len(text)
    window = text[:room]
    for sep in ("\n", " "):
        at = window.rfind(sep)
        if at > room // 2:
            return at + 1
    cut = room
    while cut > 1 and text[cut - 1] == "\\":
        cut -= 1
    return cut
