"""IRC text with mIRC codes -> Matrix ``org.matrix.custom.html``.

IRC text is hostile input: it is always HTML-escaped before it reaches a Matrix
client, and the tags it gets are properly nested whatever order the codes came in.
"""

from __future__ import annotations

import html as _html
from dataclasses import replace

from .mirc import (
    CODE_RE,
    COLOUR,
    HEX_COLOUR,
    PLAIN,
    RESET,
    REVERSE,
    TOGGLES,
    Style,
    palette_colour,
)

__all__ = ["irc_to_html"]


def _irc_segments(text: str) -> list[tuple[str, Style]]:
    """Split IRC text into runs of identical style, dropping the codes."""
    segments: list[tuple[str, Style]] = []
    style = PLAIN
    pos = 0
    for match in CODE_RE.finditer(text):
        if match.start() > pos:
            segments.append((text[pos : match.start()], style))
        pos = match.end()
        code = match.group(0)[0]
        if code == COLOUR or code == HEX_COLOUR:
            if code == COLOUR:
                fg_raw, bg_raw = match.group(1), match.group(2)
                fg, bg = palette_colour(fg_raw), palette_colour(bg_raw)
            else:
                fg_raw, bg_raw = match.group(3), match.group(4)
                fg = "#" + fg_raw.lower() if fg_raw else None
                bg = "#" + bg_raw.lower() if bg_raw else None
            if fg_raw is None:
                style = replace(style, fg=None, bg=None)  # bare code: colours off
            elif bg_raw is None:
                style = replace(style, fg=fg)  # background is kept
            else:
                style = replace(style, fg=fg, bg=bg)
        elif code == RESET:
            style = PLAIN
        elif code == REVERSE:
            pass  # no Matrix equivalent; swapping colours would mostly mislead
        else:
            attr = next(name for name, char in TOGGLES if char == code)
            style = replace(style, **{attr: not getattr(style, attr)})
    if pos < len(text):
        segments.append((text[pos:], style))
    return segments


def _html_tags_for(style: Style) -> list[tuple[str, str]]:
    """(tag name, opening tag) pairs in canonical nesting order."""
    tags: list[tuple[str, str]] = []
    if style.fg or style.bg:
        attrs = ""
        if style.fg:
            attrs += f' data-mx-color="{style.fg}"'
        if style.bg:
            attrs += f' data-mx-bg-color="{style.bg}"'
        tags.append(("font", f"<font{attrs}>"))
    if style.bold:
        tags.append(("b", "<b>"))
    if style.italic:
        tags.append(("i", "<i>"))
    if style.underline:
        tags.append(("u", "<u>"))
    if style.strike:
        tags.append(("del", "<del>"))
    if style.mono:
        tags.append(("code", "<code>"))
    return tags


def irc_to_html(text: str) -> tuple[str, str | None]:
    """Convert IRC text to ``(body, formatted_body)`` for a Matrix event.

    ``body`` has all codes stripped; ``formatted_body`` is properly nested,
    fully escaped HTML, or None when no formatting applies to any text.
    """
    segments = _irc_segments(text)
    plain = "".join(chunk for chunk, _ in segments)
    out: list[str] = []
    stack: list[tuple[str, str]] = []
    used_tags = False
    for chunk, style in segments:
        if not chunk:
            continue
        wanted = _html_tags_for(style)
        keep = 0
        while keep < len(stack) and keep < len(wanted) and stack[keep] == wanted[keep]:
            keep += 1
        # Close in reverse order: the outer tags that still apply stay open.
        while len(stack) > keep:
            out.append(f"</{stack.pop()[0]}>")
        for tag in wanted[keep:]:
            out.append(tag[1])
            stack.append(tag)
            used_tags = True
        out.append(_html.escape(chunk).replace("\n", "<br>"))
    while stack:
        out.append(f"</{stack.pop()[0]}>")
    return plain, ("".join(out) if used_tags else None)
