"""Matrix ``org.matrix.custom.html`` (or a plain body) -> Slack mrkdwn; the mapping table is in
:mod:`.mrkdwn`'s docstring.

A streaming :class:`html.parser.HTMLParser` (no recursion, so nesting depth costs nothing):
every text node is escaped for Slack (``& < >``) before any marker or ``<...>`` construct the
converter writes itself is added, so nothing a Matrix user types becomes a Slack mention,
link or command; its ``* _ ~ ``` are marked too, and :mod:`.slack_line` settles them once the
message is whole (kept where Slack would not format them, a look-alike where it would), and
writes our own markers only where Slack will read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .slack_line import (
    PLACEHOLDERS,
    PLAIN,
    Style,
    protect,
    render_line,
    resolve,
    slack_escape,
    unprotect,
)

if TYPE_CHECKING:
    from .names import MatrixNames

__all__ = ["matrix_to_mrkdwn", "slack_escape"]

_WORD_JOINER = "\u2060"
_ROOM_WORD_RE = re.compile(r"(?<![\w@])@(room|channel|here|everyone)\b", re.IGNORECASE)
# Whatever is left after conversion (``a@here``, ``@`` and ``here`` from two text nodes):
# every such word outside a ``<...>`` the converter wrote gets a word joiner.
_LEFTOVER_RE = re.compile(r"<[^<>]*>|@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_AT_WORD_RE = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_HTML_SPACE_RE = re.compile(r"[ \t\n\r\f]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f" + PLACEHOLDERS + "]")
_MATRIX_TO_RE = re.compile(r"https?://matrix\.to/#/([^?]+)", re.IGNORECASE)
_MATRIX_URI_RE = re.compile(r"matrix:(u|r|roomid)/([^?#/]+)(/|$|[?#])", re.IGNORECASE)
_MATRIX_URI_SIGILS = {"u": "@", "r": "#", "roomid": "!"}
_MXID_RE = re.compile(r"@[^:\s/]+:[^\s/]+")
_ROOM_RE = re.compile(r"[#!][^:\s/]+:[^\s/]+")
_SAFE_URL_RE = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_BLOCK = frozenset(
    "p div pre blockquote ul ol li h1 h2 h3 h4 h5 h6 table thead tbody tfoot tr "
    "details summary section article header footer nav aside figure figcaption dl dt dd "
    "address main".split()
)
_SKIP_CONTENT = frozenset({"mx-reply", "script", "style", "head", "title", "template"})
#: Quote and list-item prefixes a line may get; deeper nesting adds none (no quadratic output).
_MAX_PREFIXES = 16
#: A spoiler's reason is a label, not a message.
_MAX_REASON = 100


@dataclass
class _Anchor:
    href: str
    text: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    tag: str
    style: Style
    first: str | None = None  # line prefix (quote, list item) for its first line
    rest: str = ""
    used: bool = False
    counter: list[int] | None = None  # [next] for <ol>, [] for <ul>
    anchor: _Anchor | None = None
    pre: bool = False
    spoiler: bool = False


class _Converter(HTMLParser):
    def __init__(self, names: MatrixNames | None, may_mention_room: bool, room_mention: str):
        super().__init__(convert_charrefs=True)
        self._names = names
        self._may = may_mention_room
        self._room_mention = room_mention
        self._stack: list[_Entry] = []
        self._lines: list[str] = []
        self._line: list[tuple[str, Style]] = []
        self._has_text = False
        self._prefix_only = False  # the current line has only its quote/list prefix
        self._skip = 0
        self._gap = False
        # Counters kept with the stack, so no step scans it (deep nesting stays linear).
        self._pre_depth = 0
        self._list_depth = 0
        self._anchors: list[_Anchor] = []
        self._prefixed: list[_Entry] = []  # quotes and list items, at most _MAX_PREFIXES
        self._open_tags: dict[str, int] = {}

    # -- state ---------------------------------------------------------------------------------
    @property
    def _style(self) -> Style:
        return self._stack[-1].style if self._stack else PLAIN

    @property
    def _in_pre(self) -> bool:
        return self._pre_depth > 0

    def _anchor(self) -> _Anchor | None:
        return self._anchors[-1] if self._anchors else None

    def _newline(self) -> None:
        self._lines.append(render_line(self._line))
        self._line = []
        self._has_text = False

    def _block_break(self) -> None:
        if self._has_text:
            self._newline()

    def _emit(self, text: str, style: Style | None = None) -> None:
        """Append (already escaped) text, with the block prefixes at the start of a line."""
        if not text:
            return
        if not self._has_text:
            if not self._in_pre:
                text = text.lstrip(" ")
                if not text:
                    return
            if self._gap and self._lines:
                prefix = "".join(e.rest for e in self._prefixed)
                self._lines.append(prefix.rstrip(" "))
            self._gap = False
            self._line.extend(self._prefix_segments())
            self._has_text = True
        self._prefix_only = False
        self._line.append((text, style or self._style))

    def _prefix_segments(self) -> list[tuple[str, Style]]:
        prefix = ""
        for entry in self._prefixed:
            prefix += entry.rest if entry.used else entry.first or ""
            entry.used = True
        return [(prefix, PLAIN)] if prefix else []

    def _mentions(self, text: str, code: bool) -> str:
        def swap(match: re.Match[str]) -> str:
            word = match.group(1).lower()
            if self._may and not code and word != "everyone":
                target = self._room_mention if word == "room" else word
                return f"<!{target}>"
            if word == "room":
                return match.group(0)  # no Slack meaning
            return "@" + _WORD_JOINER + match.group(1)

        return _ROOM_WORD_RE.sub(swap, text)

    def _text(self, data: str) -> None:
        if self._in_pre:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
            data = _CONTROL_RE.sub("", data.replace("\t", "    "))
            data = slack_escape(data).replace("```", "`\u200b``")
            for index, line in enumerate(self._mentions(data, True).split("\n")):
                if index:
                    self._newline()
                    self._line.extend(self._prefix_segments())
                    self._has_text = self._prefix_only = True
                    if line:
                        self._line.append((line, PLAIN))
                        self._prefix_only = False
                else:
                    self._emit(line, PLAIN)
            return
        data = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", data))
        if self._has_text and self._line and self._line[-1][0].endswith(" "):
            data = data.lstrip(" ")
        code = self._style.code
        data = self._mentions(slack_escape(data), code)
        self._emit(data.replace("`", "ˋ") if code else protect(data))

    # -- parser callbacks ----------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _SKIP_CONTENT:
            self._skip += 1
            self._push(_Entry(tag, self._style))
            return
        if self._skip:
            return
        attributes = {name.lower(): value or "" for name, value in attrs}
        if tag == "br":
            if self._in_pre or self._has_text:
                self._newline()
            else:  # an empty line, still inside its quote
                self._lines.append("".join(e.rest for e in self._prefixed).rstrip(" "))
            return
        if tag == "hr":
            self._block_break()
            self._emit("---", PLAIN)
            self._newline()
            return
        if tag == "img":
            self._handle_text(attributes.get("alt") or attributes.get("title") or "")
            return
        if tag in _VOID:
            return
        style = self._style
        entry = _Entry(tag, style)
        if tag == "span" and "data-mx-spoiler" in attributes:
            entry.spoiler = True
            self._spoiler_start(attributes["data-mx-spoiler"])
        if not style.code:
            if tag in ("b", "strong", "h1", "h2", "h3", "h4", "h5", "h6"):
                entry.style = style._replace(bold=True)
            elif tag in ("i", "em", "cite"):
                entry.style = style._replace(italic=True)
            elif tag in ("s", "del", "strike"):
                entry.style = style._replace(strike=True)
            elif tag in ("code", "tt", "kbd", "samp") and not self._in_pre:
                entry.style = style._replace(code=True)
        if tag == "pre":
            self._block_break()
            self._emit("```", PLAIN)
            entry.pre = True
            entry.style = PLAIN
        elif tag == "blockquote":
            entry.first, entry.rest = "> ", "> "
        elif tag == "ul":
            entry.counter = []
        elif tag == "ol":
            try:
                start = int(attributes.get("start") or 1)
            except ValueError:
                start = 1
            entry.counter = [max(0, min(start, 10**6))]
        elif tag == "li":
            marker = "◦ " if self._list_depth > 1 else "• "
            for parent in reversed(self._stack):
                if parent.counter is not None:
                    if parent.counter:
                        marker = f"{parent.counter[0]}. "
                        parent.counter[0] += 1
                    break
            entry.first, entry.rest = marker, "    "
            self._gap = False  # loose lists (<li><p>) stay one list
        elif tag == "a":
            href = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub("", attributes.get("href", "")))
            if self._anchor() is not None:
                href = ""  # a link inside a link: text
            entry.anchor = _Anchor(href)
        if tag in ("td", "th") and self._has_text and not self._prefix_only:
            self._emit(" ")  # cells of a row stay apart
        if tag in _BLOCK:
            self._block_break()
        self._push(entry)

    def _push(self, entry: _Entry) -> None:
        if entry.first is not None:
            if len(self._prefixed) < _MAX_PREFIXES:
                self._prefixed.append(entry)
            else:
                entry.first = None
        self._pre_depth += entry.pre
        self._list_depth += entry.counter is not None
        if entry.anchor is not None:
            self._anchors.append(entry.anchor)
        self._open_tags[entry.tag] = self._open_tags.get(entry.tag, 0) + 1
        self._stack.append(entry)

    def _pop(self) -> _Entry:
        entry = self._stack.pop()
        self._open_tags[entry.tag] -= 1
        if entry.first is not None:
            self._prefixed.pop()
        self._pre_depth -= entry.pre
        self._list_depth -= entry.counter is not None
        if entry.anchor is not None:
            self._anchors.pop()
        return entry

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _VOID:
            return
        if self._skip and tag not in _SKIP_CONTENT:
            return
        if not self._open_tags.get(tag):
            return  # a stray end tag
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index].tag == tag:
                break
        else:
            return
        while len(self._stack) > index:
            self._close(self._pop())

    def _close(self, entry: _Entry) -> None:
        if entry.tag in _SKIP_CONTENT:
            self._skip -= 1
            return
        if entry.anchor is not None:
            self._finish_anchor(entry)
        if entry.spoiler:
            self._out("]")
        if entry.pre:
            if self._has_text and not self._prefix_only:
                self._newline()
            if self._has_text:
                self._line.append(("```", PLAIN))
            else:
                self._emit("```", PLAIN)
        if entry.tag in _BLOCK:
            self._block_break()
        if entry.tag in ("p", "pre") or entry.tag[:1] == "h" and entry.tag[1:].isdigit():
            self._gap = True
        elif entry.tag in ("ul", "ol", "blockquote", "div"):
            self._gap = False

    def _out(self, text: str) -> None:
        """Converted text: into the enclosing link's label, if any, else the line."""
        anchor = self._anchor()
        if anchor is not None:
            anchor.text.append(text)
        else:
            self._emit(text)

    def _finish_anchor(self, entry: _Entry) -> None:
        anchor = entry.anchor
        assert anchor is not None
        label = "".join(anchor.text).strip()
        href = anchor.href
        if self._anchor() is not None:
            self._out(label)  # a link inside a link: its text joins the outer label
            return
        target = _pill_target(href)
        if target is not None:
            if target[0] == "@":
                slack_id = self._names.slack_user(target) if self._names else None
                mention = f"<@{slack_id}>" if slack_id else None
            else:
                slack_id = self._names.slack_channel(target) if self._names else None
                mention = f"<#{slack_id}>" if slack_id else None
            self._out(mention or label or slack_escape(target))
            return
        if not href or not _SAFE_URL_RE.match(href):
            self._out(label)
            return
        url = slack_escape(href).replace("|", "%7C")
        if not label or _same(href, label):
            self._out(f"<{url}>")
        else:
            self._out(f"<{url}|{label}>")

    def _spoiler_start(self, reason: str) -> None:
        """Slack cannot hide text: a spoiler is shown, but announced, ``[spoiler (why): …]``."""
        reason = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", reason)).strip()[:_MAX_REASON]
        label = f"[spoiler ({reason}): " if reason else "[spoiler: "
        self._out(protect(self._mentions(slack_escape(label), True)))

    def _handle_text(self, data: str) -> None:
        anchor = self._anchor()
        if anchor is not None:
            cleaned = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", data))
            anchor.text.append(protect(self._mentions(slack_escape(cleaned), True)))
            return
        self._text(data)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self._handle_text(data)

    def result(self) -> str:
        self.close()
        while self._stack:
            self._close(self._pop())
        if self._has_text:
            self._newline()
        lines = [line.rstrip(" ") for line in self._lines]
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        return resolve(_neutralise("\n".join(lines)))


def _neutralise(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        found = match.group(0)
        if found == "@":
            return "@" + _WORD_JOINER
        target, bar, label = found[1:-1].partition("|")
        if not bar:
            return found  # <@U1>, <#C1>, <!here> (allowed), <url>: written by the converter
        return f"<{target}|{_AT_WORD_RE.sub('@' + _WORD_JOINER, label)}>"

    return _LEFTOVER_RE.sub(swap, text)


def _pill_target(href: str) -> str | None:
    """The user ID, room alias or room ID a pill links to (not an event permalink)."""
    match = _MATRIX_TO_RE.match(href)
    if match:
        path = unquote(match.group(1))
        target, slash, _ = path.partition("/")
        if _MXID_RE.fullmatch(target) or (_ROOM_RE.fullmatch(target) and not slash):
            return target
        return None
    match = _MATRIX_URI_RE.match(href)
    if match and match.group(3) != "/":
        target = _MATRIX_URI_SIGILS[match.group(1).lower()] + unquote(match.group(2))
        if _MXID_RE.fullmatch(target) or _ROOM_RE.fullmatch(target):
            return target
    return None


def _same(href: str, label: str) -> bool:
    def norm(value: str) -> str:
        value = re.sub(r"^(?:https?://|mailto:)", "", value.strip(), flags=re.IGNORECASE)
        return value.rstrip("/").lower()

    return norm(href) == norm(unprotect(label).replace("&amp;", "&"))


def matrix_to_mrkdwn(
    body: str,
    html: str | None = None,
    names: MatrixNames | None = None,
    *,
    may_mention_room: bool = False,
    room_mention: str = "channel",
) -> str:
    """Convert a Matrix message (``formatted_body`` when given, else ``body``) to Slack text.

    ``names`` maps pills back to Slack ids; ``may_mention_room`` says whether the sender has
    the power to mention the room (``@room`` -> ``<!{room_mention}>``, ``@channel``/``@here``
    -> theirs); otherwise every such word is neutralised. ``@everyone`` always is.
    """
    if html is None:
        converter = _Converter(names, may_mention_room, room_mention)
        text = _CONTROL_RE.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))
        return resolve(_neutralise(converter._mentions(protect(slack_escape(text)), False)))
    converter = _Converter(names, may_mention_room, room_mention)
    converter.feed(html)
    return converter.result()
