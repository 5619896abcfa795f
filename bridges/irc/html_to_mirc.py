"""Matrix ``org.matrix.custom.html`` -> IRC text with mIRC codes.

Matrix HTML is reduced to plain text plus mIRC codes with no CR, no NUL and
newlines only where the author meant a line break (a newline becomes a separate
IRC message, so a stray one would split text).  Matrix colours are mapped to the
nearest palette entry here, the only direction that needs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from html.parser import HTMLParser
from urllib.parse import unquote

from .mirc import COLOUR, IRC_PALETTE, PLAIN, TOGGLES, Style

__all__ = ["html_to_irc", "nearest_irc_colour"]


def _hex_to_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


_EXACT_PALETTE: dict[str, int] = {}
for _index, _colour in enumerate(IRC_PALETTE):
    _EXACT_PALETTE.setdefault(_colour, _index)


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Low-cost perceptual colour distance ("redmean")."""
    mean_r = (a[0] + b[0]) / 2
    return (
        (2 + mean_r / 256) * (a[0] - b[0]) ** 2
        + 4 * (a[1] - b[1]) ** 2
        + (2 + (255 - mean_r) / 256) * (a[2] - b[2]) ** 2
    )


@lru_cache(maxsize=1024)
def nearest_irc_colour(colour: str) -> int:
    """Map ``#rrggbb`` to an mIRC colour index.

    The 16 classic colours are preferred because every client renders them; an
    exact match in the extended palette (16-98) is used only when no classic
    colour is practically identical, so IRC -> Matrix -> IRC keeps colours.
    """
    colour = colour.lower()
    rgb = _hex_to_rgb(colour)
    best = min(range(16), key=lambda i: _distance(rgb, _hex_to_rgb(IRC_PALETTE[i])))
    best_rgb = _hex_to_rgb(IRC_PALETTE[best])
    if max(abs(x - y) for x, y in zip(rgb, best_rgb, strict=True)) <= 4:
        return best
    return _EXACT_PALETTE.get(colour, best)


_CSS_HEX_RE = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def _parse_css_colour(value: str | None) -> str | None:
    if not value:
        return None
    match = _CSS_HEX_RE.fullmatch(value.strip())
    if not match:
        return None
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits


_HTML_SPACE_RE = re.compile(r"[ \t\n\r\f]+")
# Every C0 control and DEL: invisible in Matrix, so what the sender saw never had them;
# dropping them also removes NUL, stray mIRC codes and CTCP \x01 delimiters.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MATRIX_TO_RE = re.compile(r"https?://matrix\.to/#/([^?]+)", re.IGNORECASE)
_MATRIX_URI_USER_RE = re.compile(r"matrix:u/([^?#]+)", re.IGNORECASE)
_MXID_RE = re.compile(r"@[^:\s]+:\S+")

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_BLOCK = frozenset(
    "p div pre blockquote ul ol li h1 h2 h3 h4 h5 h6 table thead tbody tfoot tr "
    "details summary section article header footer nav aside figure figcaption dl dt dd "
    "address main".split()
)
_SKIP_CONTENT = frozenset({"mx-reply", "script", "style", "head", "title", "template"})


@dataclass
class _Block:
    """Line prefix contributed by an enclosing blockquote or list item."""

    first: str
    rest: str
    used: bool = False


@dataclass
class _Entry:
    tag: str
    style: Style
    block: _Block | None = None
    list_counter: list[int] | None = None  # [next number] for <ol>, [] for <ul>
    anchor: _Anchor | None = None
    pre: bool = False


@dataclass
class _Anchor:
    href: str
    mxid: str | None
    text: list[str] = field(default_factory=list)


def _clean_url(url: str) -> str:
    return _CONTROL_RE.sub("", _HTML_SPACE_RE.sub("", url)).strip()


def _pill_target(href: str) -> str | None:
    """The Matrix user ID a pill link points at, if it is a user pill."""
    match = _MATRIX_TO_RE.match(href)
    if match:
        candidate = unquote(match.group(1))
    else:
        match = _MATRIX_URI_USER_RE.match(href)
        if not match:
            return None
        candidate = "@" + unquote(match.group(1))
    candidate = candidate.split("/", 1)[0]
    return candidate if _MXID_RE.fullmatch(candidate) else None


def _link_matches_text(href: str, text: str) -> bool:
    """Whether printing ``text`` alone already tells the reader where the link goes."""
    if not text:
        return False

    def norm(value: str) -> str:
        value = value.strip().lower()
        value = re.sub(r"^(?:https?://|mailto:)", "", value)
        return value.rstrip("/")

    if norm(href) == norm(text):
        return True
    match = _MATRIX_TO_RE.match(href)
    return bool(match) and unquote(match.group(1)).split("?")[0].lower() == text.strip().lower()


class _HtmlToIrc(HTMLParser):
    def __init__(self, pill_to_nick: Callable[[str], str | None] | None) -> None:
        super().__init__(convert_charrefs=True)
        self._pill_to_nick = pill_to_nick
        self._stack: list[_Entry] = []
        self._lines: list[list[tuple[str, Style]]] = []
        self._line: list[tuple[str, Style]] = []
        self._line_has_text = False
        self._skip_depth = 0
        self._pill_depth = 0

    # -- state helpers -------------------------------------------------
    @property
    def _style(self) -> Style:
        return self._stack[-1].style if self._stack else PLAIN

    @property
    def _in_pre(self) -> bool:
        return any(entry.pre for entry in self._stack)

    def _anchors(self) -> list[_Anchor]:
        return [entry.anchor for entry in self._stack if entry.anchor is not None]

    def _newline(self) -> None:
        while self._line:
            text, style = self._line[-1]
            stripped = text.rstrip(" ")
            if stripped:
                self._line[-1] = (stripped, style)
                break
            self._line.pop()
        self._lines.append(self._line)
        self._line = []
        self._line_has_text = False

    def _block_break(self) -> None:
        if self._line_has_text:
            self._newline()

    def _emit(self, text: str, style: Style | None = None) -> None:
        """Append inline text to the current line, adding block prefixes at line start."""
        if not text:
            return
        if not self._line_has_text:
            if not self._in_pre:
                text = text.lstrip(" ")
                if not text:
                    return
            prefix = ""
            for entry in self._stack:
                if entry.block is not None:
                    prefix += entry.block.rest if entry.block.used else entry.block.first
                    entry.block.used = True
            if prefix:
                self._line.append((prefix, PLAIN))
            self._line_has_text = True
        self._line.append((text, style or self._style))
        for anchor in self._anchors():
            anchor.text.append(text)

    def _text(self, data: str) -> None:
        if self._in_pre:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
            lines = _CONTROL_RE.sub("", data.replace("\t", "    ")).split("\n")
            for index, line in enumerate(lines):
                if index:
                    self._newline()
                self._emit(line)
        else:
            data = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", data))
            if self._line_has_text and self._line and self._line[-1][0].endswith(" "):
                data = data.lstrip(" ")
            self._emit(data)

    # -- HTMLParser callbacks --------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _SKIP_CONTENT:
            self._skip_depth += 1
            self._stack.append(_Entry(tag, self._style))
            return
        if self._skip_depth:
            return
        attributes = {name.lower(): value for name, value in attrs}

        if tag == "br":
            self._newline()
            return
        if tag == "hr":
            self._block_break()
            self._emit("---", PLAIN)
            self._newline()
            return
        if tag == "img":
            alt = attributes.get("alt") or attributes.get("title") or ""
            self._text(alt)
            return
        if tag in _VOID:
            return
        if tag in ("td", "th") and self._line_has_text:
            self._text(" ")

        style = self._style
        entry = _Entry(tag, style)
        if tag in ("b", "strong") or tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            entry.style = replace(style, bold=True)
        elif tag in ("i", "em", "cite"):
            entry.style = replace(style, italic=True)
        elif tag in ("u", "ins"):
            entry.style = replace(style, underline=True)
        elif tag in ("s", "del", "strike"):
            entry.style = replace(style, strike=True)
        elif tag in ("code", "tt", "kbd", "samp"):
            entry.style = replace(style, mono=True)
        elif tag == "pre":
            entry.style = replace(style, mono=True)
            entry.pre = True
        elif tag in ("font", "span"):
            fg = _parse_css_colour(attributes.get("data-mx-color") or attributes.get("color"))
            bg = _parse_css_colour(attributes.get("data-mx-bg-color"))
            if "data-mx-spoiler" in attributes:
                fg = bg = IRC_PALETTE[1]  # classic IRC spoiler: black on black
            entry.style = replace(style, fg=fg or style.fg, bg=bg or style.bg)
        elif tag == "blockquote":
            entry.block = _Block("> ", "> ")
        elif tag == "ul":
            entry.list_counter = []
        elif tag == "ol":
            try:
                start = int(attributes.get("start") or 1)
            except ValueError:
                start = 1
            entry.list_counter = [max(0, min(start, 10**6))]
        elif tag == "li":
            marker = "* "
            for parent in reversed(self._stack):
                if parent.list_counter is not None:
                    if parent.list_counter:
                        marker = f"{parent.list_counter[0]}. "
                        parent.list_counter[0] += 1
                    break
            entry.block = _Block(marker, " " * len(marker))
        elif tag == "a":
            href = _clean_url(attributes.get("href") or "")
            mxid = _pill_target(href) if href else None
            if self._anchors():
                href, mxid = "", None  # nested links: treat the inner one as text
            entry.anchor = _Anchor(href, mxid)
            if mxid is not None:
                self._pill_depth += 1

        if tag in _BLOCK:
            self._block_break()
        self._stack.append(entry)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _VOID:
            return
        if self._skip_depth and tag not in _SKIP_CONTENT:
            return
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index].tag == tag:
                break
        else:
            return  # stray end tag: ignore
        while len(self._stack) > index:
            self._close(self._stack.pop())

    def _close(self, entry: _Entry) -> None:
        if entry.tag in _SKIP_CONTENT:
            self._skip_depth -= 1
            return
        if entry.anchor is not None:
            self._finish_anchor(entry)
        if entry.tag in _BLOCK:
            self._block_break()

    def _finish_anchor(self, entry: _Entry) -> None:
        anchor = entry.anchor
        assert anchor is not None
        text = "".join(anchor.text).strip()
        if anchor.mxid is not None:
            self._pill_depth -= 1
            nick = self._pill_to_nick(anchor.mxid) if self._pill_to_nick else None
            label = nick or text or anchor.mxid
            self._text(_CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", label)))
            return
        if not anchor.href or _link_matches_text(anchor.href, text):
            return
        if text:
            self._emit(f" ({anchor.href})", PLAIN)
        else:
            self._text(anchor.href)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pill_depth:
            # Pill text is replaced by the nick when the link closes.
            for anchor in self._anchors():
                anchor.text.append(_HTML_SPACE_RE.sub(" ", data))
            return
        self._text(data)

    def result(self) -> str:
        self.close()
        while self._stack:
            self._close(self._stack.pop())
        self._newline()
        rendered = [_render_irc_line(line) for line in self._lines]
        while rendered and not rendered[0]:
            rendered.pop(0)
        while rendered and not rendered[-1]:
            rendered.pop()
        return "\n".join(rendered)


def _colour_index(colour: str | None) -> int | None:
    return nearest_irc_colour(colour) if colour else None


def _render_irc_line(segments: list[tuple[str, Style]]) -> str:
    """Render one line; each line starts unformatted because it is a separate message."""
    out: list[str] = []
    current = PLAIN
    for text, style in segments:
        if not text:
            continue
        for attr, code in TOGGLES:
            if getattr(current, attr) != getattr(style, attr):
                out.append(code)
        old = (_colour_index(current.fg), _colour_index(current.bg))
        fg, bg = _colour_index(style.fg), _colour_index(style.bg)
        if old != (fg, bg):
            # A digit or comma right after a colour code would be read as part of it,
            # so always use two-digit forms and never leave a bare code before one.
            ambiguous = text[0] in "0123456789,"
            if fg is None and bg is None:
                out.append(COLOUR + "99,99" if ambiguous else COLOUR)
            else:
                if bg is None and old[1] is not None:
                    out.append(COLOUR)  # a bare code is the only way to clear a background
                code = f"{COLOUR}{99 if fg is None else fg:02d}"
                if bg is not None:
                    code += f",{bg:02d}"
                elif text[0] == ",":
                    code += ",99"
                out.append(code)
        out.append(text)
        current = style
    return "".join(out)


def html_to_irc(html: str, *, pill_to_nick: Callable[[str], str | None] | None = None) -> str:
    """Convert Matrix ``formatted_body`` HTML to IRC text with mIRC codes.

    Lines are separated by ``\\n`` (one IRC message each); reply fallbacks
    (``<mx-reply>``) are dropped; user pills become ``pill_to_nick(mxid)`` or
    their link text.  Output never contains CR or NUL.
    """
    parser = _HtmlToIrc(pill_to_nick)
    parser.feed(html)
    return parser.result()
