"""Nested Matrix HTML lists from list items with levels: shared by the connectors whose
networks write lists as indented lines (Slack's mrkdwn, Discord's markdown)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ListItem", "render_lists"]


@dataclass(frozen=True)
class ListItem:
    """One item: its (already escaped) HTML, its level (0 outermost), its kind, and for an
    ordered list's first item the number it starts at."""

    html: str
    level: int = 0
    ordered: bool = False
    start: int = 1


def render_lists(items: Iterable[ListItem]) -> str:
    """Consecutive items as nested ``<ul>``/``<ol>``: a level never jumps by more than one
    (a deeper item nests one level down), and a change of kind at a level starts a new list."""
    out: list[str] = []
    stack: list[str] = []  # the open lists, outermost first
    for item in items:
        kind = "ol" if item.ordered else "ul"
        level = max(0, min(item.level, len(stack)))
        if level < len(stack):
            out.append("</li>")
            while len(stack) > level + 1:
                out.append(f"</{stack.pop()}></li>")
            if stack[-1] == kind:
                out.append("<li>")
                out.append(item.html)
                continue
            out.append(f"</{stack.pop()}>")  # bullets then numbers: a new list
        start = f' start="{item.start}"' if item.ordered and item.start != 1 else ""
        out.append(f"<{kind}{start}><li>")
        stack.append(kind)
        out.append(item.html)
    if not stack:
        return ""
    out.append("</li>")
    while stack:
        out.append(f"</{stack.pop()}>")
        if stack:
            out.append("</li>")
    return "".join(out)
