"""Discord markdown -> Matrix ``org.matrix.custom.html`` and a plain body: a pure function.

:func:`discord_to_matrix` is what inbound code calls; the lookups it needs (ghosts, portals,
roles, custom emoji) come in as a :class:`DiscordNames`; :class:`NameTable` is a plain
dict-backed one (tests, or a caller that resolved the ids first: :func:`mentioned_ids`).
The way back, Matrix -> Discord, is :mod:`.html_to_markdown`.

==============================  ==========================================  =====================
Discord                         Matrix HTML                                 plain body
==============================  ==========================================  =====================
``**b**`` ``*i*`` ``_i_``       ``<strong>`` ``<em>`` ``<u>`` ``<del>``     as typed
``__u__`` ``~~s~~``
``||spoiler||``                 ``<span data-mx-spoiler>``                  as typed
`` `c` `` / ```` ```lang c``` ``  ``<code>`` / ``<pre><code class=            as typed
                                "language-lang">`` (nothing inside parsed)
``> q`` lines, ``>>> rest``     ``<blockquote>``                            as typed
``# h`` ``## h`` ``### h``      ``<h1>``-``<h3>`` (line start, one space)   as typed
``-# small``                    ``<sub>``                                   as typed
``- a`` ``* a`` ``1. a``        ``<ul>``/``<ol>`` (two spaces a level)      as typed
``[text](https://…)``           ``<a href>`` (http/https only, else text)   ``text (url)``
``https://…`` ``<https://…>``   ``<a href>``                                the url
``\\*`` (any punctuation)        the character itself                        the character
``<@id>`` ``<@!id>``            pill to ``names.user(id).mxid``             display name
``<#id>``                       pill to the portal, else ``#name``          ``#name``
``<@&id>``                      ``@role name`` text                         same
``@everyone`` ``@here``         ``@room`` (``mentions.room`` set)           ``@room``
``<:n:id>`` ``<a:n:id>``        ``<img data-mx-emoticon src=mxc>``, else    ``:n:``
                                ``:n:``
``<t:unix:style>``              the time as text (UTC)                      same
``</cmd:id>``                   ``/cmd`` text                               same
==============================  ==========================================  =====================

Markers follow Discord's parser (simple-markdown's rules): ``_`` italics only at word
boundaries, ``*`` italics must not start or end on a space, formatting may span lines within
a paragraph. Every piece of text reaching the HTML passes through :func:`html.escape`, so no
markup from Discord reaches Matrix. ``html`` is None when the plain body says it all.
"""

from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from bridgekit.contract.html_lists import ListItem, render_lists

from .markdown_inline import URL_RE, Inline, MatrixMentions, Out, esc, pill_href

__all__ = [
    "DiscordChannel",
    "DiscordNames",
    "DiscordUser",
    "MatrixMentions",
    "MatrixText",
    "NameTable",
    "discord_to_matrix",
    "mentioned_ids",
    "pill_href",
]


@dataclass(frozen=True)
class DiscordUser:
    """A Discord user as Matrix shows them: ``mxid`` is the ghost (or the puppeted user)."""

    mxid: str | None
    name: str


@dataclass(frozen=True)
class DiscordChannel:
    """A Discord channel: ``room`` is the portal's room id or alias (None: not bridged)."""

    room: str | None
    name: str


class DiscordNames(Protocol):
    """What the Discord -> Matrix converter asks about the ids a message names."""

    def user(self, user_id: str) -> DiscordUser | None: ...

    def channel(self, channel_id: str) -> DiscordChannel | None: ...

    def role(self, role_id: str) -> str | None: ...

    def emoji(self, emoji_id: str, animated: bool) -> str | None:
        """The custom emoji's ``mxc://`` URI, or None (then ``:name:`` is shown)."""
        ...


@dataclass
class NameTable:
    """Dict-backed lookups for both directions (tests; callers that resolved ids first).

    ``users``/``channels``/``roles``/``emojis`` answer :class:`DiscordNames`;
    ``ghosts`` (mxid -> Discord user id), ``rooms`` (room id/alias -> channel id) and
    ``emoji_ids`` (mxc -> (name, id, animated)) answer
    :class:`~bridges.discord.html_to_markdown.MatrixNames`.
    """

    users: dict[str, DiscordUser] = field(default_factory=dict)
    channels: dict[str, DiscordChannel] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    emojis: dict[str, str] = field(default_factory=dict)
    ghosts: dict[str, str] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)
    emoji_ids: dict[str, tuple[str, str, bool]] = field(default_factory=dict)

    def user(self, user_id: str) -> DiscordUser | None:
        return self.users.get(user_id)

    def channel(self, channel_id: str) -> DiscordChannel | None:
        return self.channels.get(channel_id)

    def role(self, role_id: str) -> str | None:
        return self.roles.get(role_id)

    def emoji(self, emoji_id: str, animated: bool) -> str | None:
        return self.emojis.get(emoji_id)

    def ghost_user_id(self, mxid: str) -> str | None:
        return self.ghosts.get(mxid)

    def channel_id(self, room: str) -> str | None:
        return self.rooms.get(room)

    def custom_emoji(self, mxc: str) -> tuple[str, str, bool] | None:
        return self.emoji_ids.get(mxc)


class MatrixText(NamedTuple):
    body: str
    html: str | None
    mentions: MatrixMentions


_MENTION_IDS_RE = re.compile(r"<(@!?|#|@&|a?:[A-Za-z0-9_~\-]{1,64}:)([0-9]{1,20})>")


def mentioned_ids(text: str) -> dict[str, set[str]]:
    """The ids ``text`` names, by kind (``users``, ``channels``, ``roles``, ``emojis``), so
    a caller can look them up (asynchronously) and build a :class:`NameTable` first."""
    found: dict[str, set[str]] = {
        "users": set(),
        "channels": set(),
        "roles": set(),
        "emojis": set(),
    }
    for match in _MENTION_IDS_RE.finditer(text):
        sigil = match.group(1)
        kind = {"@": "users", "@!": "users", "#": "channels", "@&": "roles"}.get(sigil, "emojis")
        found[kind].add(match.group(2))
    return found


_NOT_TICK_RE = re.compile(r"[^`]")
_URL_HEAD_RE = re.compile(r"(?<![A-Za-z0-9])https?://")
_LANG_RE = re.compile(r"([A-Za-z0-9_+\-.#]{1,32})\n([\s\S]*\S[\s\S]*)")
_QUOTE_LINE_RE = re.compile(r" *> ")
_TRIPLE_RE = re.compile(r" *>>> ")
_HEADING_RE = re.compile(r"(#{1,3}) +(?=\S)")
_SUBTEXT_RE = re.compile(r"-# +(?=\S)")
_LIST_RE = re.compile(r"( *)(?:[-*]|([0-9]{1,9})\.) +(?=\S)")


@dataclass
class _Block:
    quoted: bool
    kind: str  # "para", "h1".."h3", "sub", "li", "code"
    html: str
    level: int = 0
    ordered: bool = False
    start: int = 1


class _Blocks:
    """Text -> blocks (headings, subtext, list items, code blocks, paragraphs) and the body."""

    def __init__(self, inline: Inline) -> None:
        self.inline = inline
        self.blocks: list[_Block] = []
        self.para: list[str] = []
        self.bodies: list[str] = []  # the body of the current text, line by line
        self.quoted = False
        self.markup = False

    def inline_html(self, text: str) -> tuple[str, str]:
        out = Out()
        self.inline.parse(text, out)
        self.markup = self.markup or out.markup
        return "".join(out.html), "".join(out.body)

    def flush(self) -> None:
        if not self.para:
            return
        html, body = self.inline_html("\n".join(self.para))
        html_lines = html.split("\n")
        while html_lines and not html_lines[-1].strip():
            html_lines.pop()
        while html_lines and not html_lines[0].strip():
            html_lines.pop(0)
        self.blocks.append(_Block(self.quoted, "para", "<br>".join(html_lines)))
        self.bodies.append(body)
        self.para = []

    def line(self, line: str) -> None:
        heading = _HEADING_RE.match(line)
        subtext = _SUBTEXT_RE.match(line)
        listed = _LIST_RE.match(line)
        found = heading or subtext or listed
        if found is None:
            self.para.append(line)
            return
        self.flush()
        self.markup = True
        html, body = self.inline_html(line[found.end() :])
        self.bodies.append(found.group(0) + body)
        if heading:
            tag = f"h{len(heading.group(1))}"
            self.blocks.append(_Block(self.quoted, tag, f"<{tag}>{html}</{tag}>"))
        elif subtext:
            self.blocks.append(_Block(self.quoted, "sub", f"<sub>{html}</sub>"))
        elif listed:
            digits = listed.group(2)
            start = int(digits) if digits else 1
            level = len(listed.group(1)) // 2
            self.blocks.append(_Block(self.quoted, "li", html, level, bool(digits), start))

    def code(self, raw: str) -> None:
        self.markup = True
        lang_match = _LANG_RE.fullmatch(raw)
        lang, content = (lang_match.group(1), lang_match.group(2)) if lang_match else ("", raw)
        content = content.strip("\n")
        attr = f' class="language-{_attr(lang)}"' if lang else ""
        html = f"<pre><code{attr}>{esc(content)}</code></pre>"
        self.blocks.append(_Block(self.quoted, "code", html))

    def text(self, text: str, quoted: bool) -> str:
        """Blocks of a text with no quote in it (a quote's content, or text between quotes);
        returns its body."""
        self.quoted = quoted
        self.markup = self.markup or quoted
        body: list[str] = []
        pos = 0
        for start, end in [*_fences(text), (len(text), len(text))]:
            lines = text[pos:start].split("\n")
            lead = trail = ""
            if pos > 0 and len(lines) > 1 and lines[0] == "":
                lines.pop(0)  # the newline after a fence
                lead = "\n"
            if start < len(text) and len(lines) > 1 and lines[-1] == "":
                lines.pop()  # the newline before a fence
                trail = "\n"
            if lines != [""]:
                for line in lines:
                    self.line(line)
            self.flush()
            body.append(lead + "\n".join(self.bodies) + trail)
            self.bodies = []
            if start < len(text):
                self.code(text[start + 3 : end - 3])
                body.append(text[start:end])
            pos = end
        return "".join(body)


def _attr(text: str) -> str:
    return _html.escape(text, quote=True)


def _render(blocks: list[_Block]) -> str:
    out: list[str] = []
    index = 0
    while index < len(blocks):
        quoted = blocks[index].quoted
        end = index
        while end < len(blocks) and blocks[end].quoted == quoted:
            end += 1
        parts: list[str] = []
        group = blocks[index:end]
        at = 0
        while at < len(group):
            if group[at].kind == "li":
                stop = at
                while stop < len(group) and group[stop].kind == "li":
                    stop += 1
                parts.append(
                    render_lists(
                        ListItem(b.html, b.level, b.ordered, b.start) for b in group[at:stop]
                    )
                )
                at = stop
            else:
                if at and group[at].kind == group[at - 1].kind == "para":
                    parts.append("<br>")  # two quotes in a row ("> a" then ">>> b")
                parts.append(group[at].html)
                at += 1
        inner = "".join(parts)
        if quoted:
            out.append(f"<blockquote>{inner}</blockquote>" if inner else "")
        else:
            out.append(inner)
        index = end
    return "".join(out)


def _next_fence(text: str, pos: int) -> tuple[int, int] | None:
    """The next code block from ``pos``: a ``\u0060\u0060\u0060`` up to the next one past a
    character that is not a backtick, unless a URL before it takes it in (as on Discord)."""
    while (start := text.find("```", pos)) >= 0:
        run = max(text.rfind(char, pos, start) for char in " \n\t\r\f\v<") + 1
        head = _URL_HEAD_RE.search(text, max(run, pos), start)
        url = URL_RE.match(text, head.start()) if head else None
        if url is not None and url.end() > start:
            pos = url.end()
            continue
        content = _NOT_TICK_RE.search(text, start + 3)
        close = text.find("```", content.start() + 1) if content else -1
        return (start, close + 3) if close >= 0 else None
    return None


def _fences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each code block; a scan, not a backtracking regex: linear."""
    found: list[tuple[int, int]] = []
    pos = 0
    while (fence := _next_fence(text, pos)) is not None:
        found.append(fence)
        pos = fence[1]
    return found


def _quotes(text: str) -> list[tuple[str, str]]:
    """The text as (quote marker, content) runs in Discord's order: a line starting ``> ``
    (with the lines after it that do) or ``>>> `` (the rest of the message) outside a code
    block; marker "" for the text between."""
    runs: list[tuple[str, str]] = []
    length = len(text)
    pos = plain = 0
    fence = _next_fence(text, 0)
    while pos < length:
        if fence is not None and fence[0] < pos:
            fence = _next_fence(text, pos)  # the one found began inside a quote
        triple = _TRIPLE_RE.match(text, pos)
        quote = None if triple else _QUOTE_LINE_RE.match(text, pos)
        if triple or quote:
            if pos > plain:
                runs.append(("", text[plain : pos - 1]))
        if triple:
            runs.append((">>> ", text[triple.end() :]))
            return runs
        if quote:
            lines: list[str] = []
            while quote:
                end = text.find("\n", pos)
                end = length if end < 0 else end
                lines.append(text[quote.end() : end])
                pos = end + 1
                quote = _QUOTE_LINE_RE.match(text, pos) if pos < length else None
            runs.append(("> ", "\n".join(lines)))
            plain = pos
            continue
        end = text.find("\n", pos)
        end = length if end < 0 else end
        while fence is not None and fence[0] <= end:  # a code block opening on this line
            end = text.find("\n", fence[1])
            end = length if end < 0 else end
            fence = _next_fence(text, fence[1])
        pos = end + 1
    if plain < length or not runs:
        runs.append(("", text[plain:]))
    return runs


def discord_to_matrix(text: str, names: DiscordNames | None = None) -> MatrixText:
    """Convert a Discord message's ``content`` to ``(body, html, mentions)`` for Matrix.

    ``names`` answers for the ids the text names; without it mentions show their ids.
    ``html`` is escaped HTML, or None when the plain body says it all; ``mentions`` has
    the users' mxids and whether ``@everyone``/``@here`` was written (``m.mentions.room``;
    whether it pinged on Discord is the message's ``mention_everyone``, which a caller may
    prefer: a member without the permission writes the words without pinging anyone).
    """
    inline = Inline(names)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    blocks = _Blocks(inline)
    bodies: list[str] = []
    for marker, content in _quotes(text):
        body = blocks.text(content, bool(marker))
        if marker == "> ":
            body = "\n".join("> " + line for line in body.split("\n"))
        bodies.append(marker + body if marker != "> " else body)
    body = "\n".join(bodies)
    if not blocks.markup:
        return MatrixText(body, None, inline.mentions)
    return MatrixText(body, _render(blocks.blocks) or None, inline.mentions)
