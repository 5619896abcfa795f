"""Discord markdown -> Matrix HTML, the inline part (markers, code spans, links, mentions);
the blocks and the mapping table are in :mod:`.markdown`.

Rules are tried at each special character, in Discord's order of precedence; a marker's
content is parsed again (depth-bounded). Every text reaching the HTML is escaped.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import html as _html
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .markdown import DiscordNames

__all__ = ["URL_RE", "Inline", "MatrixMentions", "Out", "esc", "pill_href"]


@dataclass
class MatrixMentions:
    """Who the message mentions, for the event's ``m.mentions``."""

    user_ids: list[str] = field(default_factory=list)
    room: bool = False

    def as_content(self) -> dict[str, object]:
        """The ``m.mentions`` object."""
        content: dict[str, object] = {"user_ids": list(self.user_ids)}
        if self.room:
            content["room"] = True
        return content


def pill_href(target: str) -> str:
    """The matrix.to link of a user id, room id or alias."""
    return "https://matrix.to/#/" + target


def esc(text: str) -> str:
    return _html.escape(text, quote=False)


def _attr(text: str) -> str:
    return _html.escape(text, quote=True)


_MXC_RE = re.compile(r"mxc://[A-Za-z0-9.\-:\[\]]+/[A-Za-z0-9_\-]+")
#: A room alias, or a room id (room version 12 ids have no server part).
_ROOM_TARGET_RE = re.compile(r"#[^\s/:<>\"']+:[^\s/<>\"']+|![^\s/:<>\"']+(?::[^\s/<>\"']+)?")
_MXID_RE = re.compile(r"@[^\s/:<>\"']+:[^\s/<>\"']+")
#: Nesting deeper than this is shown as typed (bounded recursion).
_MAX_DEPTH = 12


class Out:
    """HTML and body built side by side; ``markup`` says whether the HTML adds anything."""

    def __init__(self) -> None:
        self.html: list[str] = []
        self.body: list[str] = []
        self.markup = False

    def text(self, text: str) -> None:
        self.html.append(esc(text))
        self.body.append(text)

    def both(self, html: str, body: str, markup: bool = True) -> None:
        self.html.append(html)
        self.body.append(body)
        self.markup = self.markup or markup


# Inline rules, in Discord's order of precedence; each is matched at a position.
_ESCAPE_RE = re.compile(r"\\([^0-9A-Za-z\s])")
_TICKS_RE = re.compile(r"`+")
_STRONG_RE = re.compile(r"\*\*((?:\\[\s\S]|[^\\])+?)\*\*(?!\*)")
_UNDER_RE = re.compile(r"__((?:\\[\s\S]|[^\\])+?)__(?!_)")
_EM_RE = re.compile(
    r"\b_((?:__|\\[\s\S]|[^\\_])+?)_\b"
    r"|\*(?=\S)((?:\*\*|\\[\s\S]|\s+(?:\\[\s\S]|[^\s*\\]|\*\*)|[^\s*\\])+?)\*(?!\*)"
)
_DEL_RE = re.compile(r"~~((?:\\[\s\S]|[^\\])+?)~~")
_SPOILER_RE = re.compile(r"\|\|((?:\\[\s\S]|[^\\])+?)\|\|")
_LINK_RE = re.compile(
    r"\[((?:\\[\s\S]|[^\[\]\\\n])+)\]\(\s*<?(https?://[^\s()<>]+(?:\([^\s()<>]*\)[^\s()<>]*)*)>?\s*\)"
)
_ANGLE_RE = re.compile(
    r"<(?:(@!?|#|@&)([0-9]{1,20})"
    r"|(a?):([A-Za-z0-9_~\-]{1,64}):([0-9]{1,20})"
    r"|t:(-?[0-9]{1,13})(?::([tTdDfFR]))?"
    r"|/([^\s<>:/][^<>:]{0,99}):([0-9]{1,20})"
    r"|(https?://[^\s<>]+))>"
)
#: Discord's own autolink rule (simple-markdown's): to whitespace or "<", less trailing
#: punctuation. Nothing inside is formatting (a fence or a marker in a URL is part of it).
URL_RE = re.compile(r"(?<![A-Za-z0-9])https?://[^\s<]+[^<.,:;\"')\]\s]")
_EVERYONE_RE = re.compile(r"(?<!\w)@(everyone|here)\b")
_SPECIAL_RE = re.compile(r"[\\`*_~|\[<@h]")


def _format_time(unix: str, style: str | None) -> str:
    try:
        when = _dt.datetime.fromtimestamp(int(unix), _dt.UTC)
    except (ValueError, OverflowError, OSError):
        return f"<t:{unix}>"
    formats = {
        "t": "%H:%M UTC",
        "T": "%H:%M:%S UTC",
        "d": "%Y-%m-%d",
        "D": "%d %B %Y",
        "F": "%A, %d %B %Y %H:%M UTC",
    }
    return when.strftime(formats.get(style or "f", "%d %B %Y %H:%M UTC"))


class Inline:
    """The inline parser of one message (it keeps the mentions it meets)."""

    def __init__(self, names: DiscordNames | None) -> None:
        self.names = names
        self.mentions = MatrixMentions()

    def parse(self, text: str, out: Out, depth: int = 0, links: bool = True) -> None:
        pos = 0
        literal_from = 0
        # The last place each closing token occurs: an opener past it cannot match (this
        # keeps unclosed markers from costing a scan each: linear, not quadratic).
        last = {tok: text.rfind(tok) for tok in ("**", "__", "~~", "||", "`", "*", "_", ")", ">")}
        runs: dict[int, list[int]] | None = None  # backtick runs by length, for code spans
        while True:
            found = _SPECIAL_RE.search(text, pos)
            if found is None:
                break
            pos = found.start()
            if text[pos] == "`":
                if runs is None:
                    runs = {}
                    for tick in _TICKS_RE.finditer(text):
                        runs.setdefault(len(tick.group(0)), []).append(tick.start())
                done = self._code_span(text, pos, out, runs, literal_from)
                if done < 0:  # no closing run: the whole run is text
                    pos = -done
                    continue
            else:
                done = self._rule(text, pos, out, depth, links, last, literal_from)
            if done is None:
                pos += 1
            else:
                literal_from = pos = done
        if literal_from < len(text):
            out.text(text[literal_from:])

    def _code_span(
        self, text: str, pos: int, out: Out, runs: dict[int, list[int]], start: int
    ) -> int:
        """A code span opened by the backtick run at ``pos``, closed by the next run of the
        same length: where parsing goes on, or minus the run's end when it is not closed."""
        tick = _TICKS_RE.match(text, pos)
        assert tick is not None
        end = tick.end()
        closers = runs.get(end - pos, [])
        index = bisect.bisect_left(closers, end)
        if index == len(closers):
            return -end
        close = closers[index]
        self._flush(text, start, pos, out)
        code = text[end:close]
        inner = code.strip(" ") if code.strip(" ") else code
        out.both(f"<code>{esc(inner)}</code>", text[pos : close + end - pos])
        return close + end - pos

    def _flush(self, text: str, start: int, pos: int, out: Out) -> None:
        if pos > start:
            out.text(text[start:pos])

    def _rule(
        self,
        text: str,
        pos: int,
        out: Out,
        depth: int,
        links: bool,
        last: dict[str, int],
        start: int,
    ) -> int | None:
        """Try the rules at ``pos``; on a match write the text before it and the match, and
        return where parsing goes on."""
        char = text[pos]
        match: re.Match[str] | None = None
        if char == "\\":
            match = _ESCAPE_RE.match(text, pos)
            if match:
                self._flush(text, start, pos, out)
                out.both(esc(match.group(1)), match.group(1), markup=False)
                return match.end()
            return None
        if char == "@":
            match = _EVERYONE_RE.match(text, pos)
            if match:
                self._flush(text, start, pos, out)
                self.mentions.room = True
                out.both("@room", "@room", markup=False)
                return match.end()
            return None
        if char == "<" and last[">"] > pos:
            match = _ANGLE_RE.match(text, pos)
            if match:
                self._flush(text, start, pos, out)
                self._angle(match, out)
                return match.end()
            return None
        if char == "h":
            match = URL_RE.match(text, pos) if links else None
            if match:
                self._flush(text, start, pos, out)
                url = match.group(0)
                out.both(f'<a href="{_attr(url)}">{esc(url)}</a>', url)
                return match.end()
            return None
        if char == "[":
            match = _LINK_RE.match(text, pos) if links and last[")"] > pos else None
            if match:
                self._flush(text, start, pos, out)
                label, url = match.group(1), match.group(2)
                inner = Out()
                self._nested(label, inner, depth, links=False)
                label_body = "".join(inner.body)
                out.both(
                    f'<a href="{_attr(url)}">{"".join(inner.html)}</a>',
                    label_body
                    if label_body.rstrip("/") == url.rstrip("/")
                    else f"{label_body} ({url})",
                )
                return match.end()
            return None
        if depth >= _MAX_DEPTH:
            return None
        for token, regex, open_tag, close_tag in _MARKERS.get(char, ()):
            if last.get(token, -1) <= pos:
                continue
            match = regex.match(text, pos)
            if match:
                self._flush(text, start, pos, out)
                inner_text = match.group(1) if match.group(1) is not None else match.group(2)
                inner = Out()
                self._nested(inner_text, inner, depth, links)
                marker = match.group(0)[: len(token)]
                out.both(
                    open_tag + "".join(inner.html) + close_tag,
                    marker + "".join(inner.body) + marker,
                )
                return match.end()
        return None

    def _nested(self, text: str, out: Out, depth: int, links: bool) -> None:
        self.parse(text, out, depth + 1, links)

    def _angle(self, match: re.Match[str], out: Out) -> None:
        sigil, ident = match.group(1), match.group(2)
        names = self.names
        if sigil in ("@", "@!"):
            user = names.user(ident) if names else None
            if user is not None and user.mxid and _MXID_RE.fullmatch(user.mxid):
                if user.mxid not in self.mentions.user_ids:
                    self.mentions.user_ids.append(user.mxid)
                href = _attr(pill_href(user.mxid))
                out.both(f'<a href="{href}">{esc(user.name)}</a>', user.name)
            else:
                out.both(
                    esc("@" + (user.name if user else ident)),
                    "@" + (user.name if user else ident),
                    False,
                )
        elif sigil == "#":
            channel = names.channel(ident) if names else None
            name = "#" + (channel.name if channel else ident)
            if channel is not None and channel.room and _ROOM_TARGET_RE.fullmatch(channel.room):
                out.both(f'<a href="{_attr(pill_href(channel.room))}">{esc(name)}</a>', name)
            else:
                out.both(esc(name), name, markup=False)
        elif sigil == "@&":
            name = "@" + ((names.role(ident) if names else None) or ident)
            out.both(esc(name), name, markup=False)
        elif match.group(4) is not None:
            animated, name, ident = match.group(3) == "a", match.group(4), match.group(5)
            mxc = names.emoji(ident, animated) if names else None
            shown = f":{name}:"
            if mxc and _MXC_RE.fullmatch(mxc):
                out.both(
                    f'<img data-mx-emoticon src="{_attr(mxc)}" alt="{_attr(shown)}" '
                    f'title="{_attr(shown)}" height="32">',
                    shown,
                )
            else:
                out.both(esc(shown), shown, markup=False)
        elif match.group(6) is not None:
            shown = _format_time(match.group(6), match.group(7))
            out.both(esc(shown), shown, markup=False)
        elif match.group(8) is not None:
            shown = "/" + match.group(8)
            out.both(esc(shown), shown, markup=False)
        else:
            url = match.group(10)
            out.both(f'<a href="{_attr(url)}">{esc(url)}</a>', url)


_MARKERS: dict[str, tuple[tuple[str, re.Pattern[str], str, str], ...]] = {
    "*": (("**", _STRONG_RE, "<strong>", "</strong>"), ("*", _EM_RE, "<em>", "</em>")),
    "_": (("__", _UNDER_RE, "<u>", "</u>"), ("_", _EM_RE, "<em>", "</em>")),
    "~": (("~~", _DEL_RE, "<del>", "</del>"),),
    "|": (("||", _SPOILER_RE, "<span data-mx-spoiler>", "</span>"),),
}
