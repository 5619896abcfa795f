"""Slack mrkdwn -> Matrix HTML and plain body; the mapping table is in :mod:`.mrkdwn`.

One pass per line for the inline atoms (``<...>``, code spans, bare URLs, emoji shortcodes)
and the ``*_~`` markers (paired with a stack: linear time), then blocks (quotes, lists, code
fences). Every piece of text reaching the HTML goes through :func:`html.escape`.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import re
from dataclasses import dataclass

from bridgekit.contract.html_lists import ListItem, render_lists

from .emoji_codes import emoji_unicode
from .names import (
    ANGLE_RE,
    CHANNEL_ID_RE,
    SPECIALS,
    USER_ID_RE,
    NameTable,
    SlackNames,
    pill_href,
    slack_unescape,
)

__all__ = ["mrkdwn_to_matrix"]

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SAFE_URL_RE = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)


def _esc(text: str) -> str:
    return _html.escape(text, quote=False)


@dataclass
class _Atom:
    """A unit no marker can enter: its HTML, its plain text, its text inside code."""

    html: str
    body: str
    code: str
    markup: bool = True


_NO_NAMES = NameTable()


def _format_date(target: str, label: str) -> str:
    if label:
        return label
    fields = target.split("^")
    try:
        when = _dt.datetime.fromtimestamp(int(fields[1]), _dt.UTC)
    except (IndexError, ValueError, OverflowError, OSError):
        return ""
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _link_label_is_url(url: str, label: str) -> bool:
    def norm(value: str) -> str:
        value = re.sub(r"^(?:https?://|mailto:)", "", value.strip(), flags=re.IGNORECASE)
        return value.rstrip("/").lower()

    return not label or norm(url) == norm(label)


def _angle_atom(inner: str, raw: str, names: SlackNames) -> _Atom:
    """``<...>`` (``inner`` still Slack-escaped) as an atom."""
    target, bar, label_raw = inner.partition("|")
    label = slack_unescape(label_raw)
    if target.startswith("@") and USER_ID_RE.fullmatch(target[1:]):
        user = names.user(target[1:])
        if user is not None and user.mxid:
            return _Atom(
                f'<a href="{_html.escape(pill_href(user.mxid))}">{_esc(user.name)}</a>',
                user.name,
                "@" + user.name,
            )
        name = "@" + (user.name if user else label or target[1:])
        return _Atom(_esc(name), name, name, markup=False)
    if target.startswith("#") and CHANNEL_ID_RE.fullmatch(target[1:]):
        channel = names.channel(target[1:])
        name = "#" + (channel.name if channel else label or target[1:])
        if channel is not None and channel.room:
            href = channel.room if channel.room.startswith("https://") else pill_href(channel.room)
            return _Atom(f'<a href="{_html.escape(href)}">{_esc(name)}</a>', name, name)
        return _Atom(_esc(name), name, name, markup=False)
    if target.startswith("!"):
        keyword = target[1:]
        if keyword in SPECIALS:
            # Matrix's word for all three; m.mentions.room is the connector's call.
            text = "@room"
        elif keyword.startswith("subteam^"):
            # A user group has no Matrix counterpart: its handle as plain text.
            text = label or keyword[len("subteam^") :]
            text = text if text.startswith("@") else "@" + text
        elif keyword.startswith("date^"):
            text = _format_date(keyword, label)
        else:
            text = label or slack_unescape(raw)
        return _Atom(_esc(text), text, text, markup=False)
    url = slack_unescape(target)
    if _SAFE_URL_RE.match(url) and not any(c.isspace() or ord(c) < 32 for c in url):
        shown = label or url
        body = (label or url) if _link_label_is_url(url, label) else f"{label} ({url})"
        return _Atom(f'<a href="{_html.escape(url)}">{_esc(shown)}</a>', body, shown)
    if _SCHEME_RE.match(url):
        # Any other scheme (javascript:, data:, slack:) is shown, never linked.
        text = url if _link_label_is_url(url, label) else f"{label} ({url})"
        return _Atom(_esc(text), text, label or url, markup=False)
    text = slack_unescape(raw)  # not a Slack construct at all: the literal text
    return _Atom(_esc(text), text, text, markup=False)


def _code_text(raw: str, names: SlackNames) -> str:
    """Code content: entities decoded, mentions and links as their text, nothing else."""
    out: list[str] = []
    pos = 0
    for match in ANGLE_RE.finditer(raw):
        out.append(slack_unescape(raw[pos : match.start()]))
        out.append(_angle_atom(match.group(1), match.group(0), names).code)
        pos = match.end()
    out.append(slack_unescape(raw[pos:]))
    return "".join(out)


# Atoms of a line, tried at each position: a <...> construct, a code span, a bare URL (kept
# whole so its underscores are not markers), an emoji shortcode. Every alternative stops at
# the next character of its own kind, so the scan stays linear.
_INLINE_RE = re.compile(
    r"<[^<>\n]*>"
    r"|`[^`\n]+`"
    r"|https?://[^\s<>`|]+"
    r"|:[A-Za-z0-9_+'\-]{1,100}:(?::skin-tone-[2-6]:)?",
    re.IGNORECASE,
)
_URL_TRAIL = ".,;:!?'\")]*_~"
_MARKERS = {"*": "strong", "_": "em", "~": "del"}


@dataclass
class _Delim:
    char: str
    open_tag: str = ""
    close_tag: str = ""


def _inline(line: str, names: SlackNames) -> tuple[str, str, bool]:
    """One line of Slack text -> (html, body, used markup)."""
    pieces: list[str | _Atom | _Delim] = []
    markup = False

    def add_text(start: int, end: int) -> None:
        pos = start
        for index in range(start, end):
            char = line[index]
            if char not in _MARKERS:
                continue
            prev = line[index - 1] if index > 0 else ""
            nxt = line[index + 1] if index + 1 < len(line) else ""
            can_open = bool(nxt) and not nxt.isspace() and nxt != char
            can_open = can_open and (not prev or (not prev.isalnum() and prev != char))
            can_close = bool(prev) and not prev.isspace() and prev != char
            can_close = can_close and (not nxt or (not nxt.isalnum() and nxt != char))
            if not (can_open or can_close):
                continue
            if index > pos:
                pieces.append(line[pos:index])
            pieces.append(_Delim(char))
            flags.append((len(pieces) - 1, can_open, can_close))
            pos = index + 1
        if end > pos:
            pieces.append(line[pos:end])

    flags: list[tuple[int, bool, bool]] = []
    pos = 0
    search_from = 0
    while True:
        match = _INLINE_RE.search(line, search_from)
        if match is None:
            break
        token = match.group(0)
        start, end = match.span()
        atom: _Atom | None = None
        first = token[0]
        if first == "<":
            atom = _angle_atom(token[1:-1], token, names)
        elif first == "`":
            code = _code_text(token[1:-1], names)
            atom = _Atom(f"<code>{_esc(code)}</code>", "`" + code + "`", code)
        elif first == ":":
            name = token.strip(":")
            char = None if name.startswith("skin-tone-") else emoji_unicode(name)
            if char is None:
                # Not an emoji (a custom one?): `:name` is kept whole, never formatted, and
                # its closing colon may open the next shortcode.
                end = start + token.index(":", 1)
                literal = slack_unescape(line[start:end])
                atom = _Atom(_esc(literal), literal, literal, markup=False)
            else:
                atom = _Atom(char, char, char, markup=False)
        else:
            trimmed = token.rstrip(_URL_TRAIL)
            end = start + len(trimmed)
            url = slack_unescape(trimmed)
            atom = _Atom(_esc(url), url, url, markup=False)
        add_text(pos, start)
        pieces.append(atom)
        markup = markup or atom.markup
        pos = search_from = end
    add_text(pos, len(line))

    # Pair markers with a stack; a closer pairs with the nearest opener of its character and
    # the openers above it stay literal. `open_count` keeps the search amortised linear.
    stack: list[int] = []
    open_count = dict.fromkeys(_MARKERS, 0)
    for index, can_open, can_close in flags:
        delim = pieces[index]
        assert isinstance(delim, _Delim)
        if can_close and open_count[delim.char]:
            while True:
                opener = pieces[stack.pop()]
                assert isinstance(opener, _Delim)
                open_count[opener.char] -= 1
                if opener.char == delim.char:
                    break
            tag = _MARKERS[delim.char]
            opener.open_tag, delim.close_tag = f"<{tag}>", f"</{tag}>"
            markup = True
        elif can_open:
            stack.append(index)
            open_count[delim.char] += 1

    html_out: list[str] = []
    body_out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            text = slack_unescape(piece)
            html_out.append(_esc(text))
            body_out.append(text)
        elif isinstance(piece, _Atom):
            html_out.append(piece.html)
            body_out.append(piece.body)
        else:
            html_out.append(piece.open_tag or piece.close_tag or piece.char)
            body_out.append(piece.char)
    return "".join(html_out), "".join(body_out), markup


_QUOTE_RE = re.compile(r"(?:&gt;|>)(?:&gt;&gt;|>>)?")
_LIST_RE = re.compile(r"([ \t]*)(?:[•◦▪▫‣\-]|([0-9]{1,3})[.)])[ \t]+")


@dataclass
class _Block:
    quoted: bool
    kind: str  # "line", "li", "code"
    html: str = ""
    level: int = 0
    list: str = "ul"  # for "li": "ul" or "ol"
    start: int = 1


def _split_fences(text: str) -> list[tuple[bool, str]]:
    """(is code, text) chunks; an unpaired or empty fence is literal text."""
    parts = text.split("```")
    if len(parts) % 2 == 0:
        parts[-2:] = [parts[-2] + "```" + parts[-1]]
    chunks: list[tuple[bool, str]] = []
    for index, part in enumerate(parts):
        if index % 2 and part.strip("\n"):
            chunks.append((True, part))
        elif index % 2:
            literal = "```" + part + "```"
            chunks.append((False, literal))
        else:
            chunks.append((False, part))
    merged: list[tuple[bool, str]] = []
    for is_code, part in chunks:
        if merged and not is_code and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + part)
        else:
            merged.append((is_code, part))
    return merged


def mrkdwn_to_matrix(text: str, names: SlackNames | None = None) -> tuple[str, str | None]:
    """Convert a Slack message's ``text`` to ``(body, formatted_body)`` for Matrix.

    ``names`` answers for the ids the text names (see :func:`mentioned_ids`); without it
    mentions fall back to their labels or ids. ``formatted_body`` is fully escaped HTML, or
    None when plain text says it all.
    """
    names = names if names is not None else _NO_NAMES
    chunks = _split_fences(text)
    blocks: list[_Block] = []
    bodies: list[str] = []
    markup = False
    in_triple = False  # after >>>: the rest of the message is quoted
    for index, (is_code, chunk) in enumerate(chunks):
        if is_code:
            content = _code_text(chunk, names)
            body = "```" + content + "```"
            if content.startswith("\n"):
                content = content[1:]
            if content.endswith("\n"):
                content = content[:-1]
            prefix_quoted = bool(blocks) and blocks[-1].kind == "quote-marker"
            if prefix_quoted:
                blocks.pop()
            pre = f"<pre><code>{_esc(content)}</code></pre>"
            blocks.append(_Block(in_triple or prefix_quoted, "code", pre))
            bodies.append(body)
            markup = True
            continue
        lines = chunk.split("\n")
        for number, line in enumerate(lines):
            after_code = number == 0 and index > 0
            before_code = number == len(lines) - 1 and index + 1 < len(chunks)
            if number:
                bodies.append("\n")
            if (after_code or before_code) and line == "":
                continue  # the newline next to a fence is not an empty line
            quoted = in_triple
            content = line
            marker = _QUOTE_RE.match(line) if not after_code else None
            if marker and not in_triple:
                quoted = True
                if marker.group(0) in (">>>", "&gt;&gt;&gt;"):
                    in_triple = True
                content = line[marker.end() :]
                if content.startswith(" "):
                    content = content[1:]
                bodies.append(slack_unescape(line[: len(line) - len(content)]))
            if before_code and quoted and content.strip() == "":
                blocks.append(_Block(True, "quote-marker"))
                continue
            listed = _LIST_RE.match(content) if not after_code else None
            html_part, body_part, used = _inline(
                content[listed.end() :] if listed else content, names
            )
            markup = markup or used or quoted
            if listed:
                indent = listed.group(1).replace("\t", "    ")
                digits = listed.group(2)
                kind, start = ("ol", int(digits)) if digits else ("ul", 1)
                blocks.append(_Block(quoted, "li", html_part, len(indent) // 4, kind, start))
                bodies.append(listed.group(0) + body_part)
                markup = True
            else:
                blocks.append(_Block(quoted, "line", html_part))
                bodies.append(body_part)
    body = "".join(bodies)
    if not markup:
        return body, None
    return body, _render_blocks([b for b in blocks if b.kind != "quote-marker"])


def _render_blocks(blocks: list[_Block]) -> str:
    out: list[str] = []
    index = 0
    while index < len(blocks):
        end = index
        while end < len(blocks) and blocks[end].quoted == blocks[index].quoted:
            end += 1
        inner = _render_group(blocks[index:end])
        out.append(f"<blockquote>{inner}</blockquote>" if blocks[index].quoted else inner)
        index = end
    return "".join(out)


def _render_group(blocks: list[_Block]) -> str:
    out: list[str] = []
    index = 0
    previous_line = False
    while index < len(blocks):
        block = blocks[index]
        if block.kind == "li":
            end = index
            while end < len(blocks) and blocks[end].kind == "li":
                end += 1
            out.append(
                render_lists(
                    ListItem(b.html, b.level, b.list == "ol", b.start) for b in blocks[index:end]
                )
            )
            index = end
            previous_line = False
            continue
        if block.kind == "code":
            out.append(block.html)
            previous_line = False
        else:
            if previous_line:
                out.append("<br>")
            out.append(block.html)
            previous_line = True
        index += 1
    return "".join(out)
