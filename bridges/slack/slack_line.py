"""Writing Slack mrkdwn lines: escaping, formatting markers where Slack honours them, and
literal ``* _ ~ ``` typed on Matrix kept literal.

Slack has no backslash escape. A ``*``, ``_`` or ``~`` is a marker only at a word boundary (an
opener after the start, a space or punctuation and before a non-space; a closer the reverse)
and only with a partner on the same line; a backtick pairs with any other backtick. So:

- our own markers (from ``<b>``, ``<em>``, ``<del>``) are written only where Slack will read
  them: a pair that would sit inside a word (``a<b>b</b>c``) is dropped, the text reads
  ``abc`` rather than ``a*b*c`` with stray asterisks;
- a literal marker character in Matrix text is first written as a placeholder
  (:func:`protect`); once the message is whole, :func:`resolve` puts the character back where
  Slack would leave it alone (``2 * 3``, ``snake_case``, ``~/path``, one lone backtick) and
  writes a look-alike where Slack would pair it (``*not bold*`` -> ``∗not bold∗``; ``_`` ->
  ``＿``, ``~`` -> ``∼``, backtick -> ``ˋ``). The judgement is conservative: any possible
  partner on the line, ours or typed, counts.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PLAIN", "Style", "protect", "render_line", "resolve", "slack_escape", "unprotect"]

# Placeholders for literal marker characters: Unicode noncharacters, stripped from all input.
_LITERAL = {"*": "\ufdd0", "_": "\ufdd1", "~": "\ufdd2", "`": "\ufdd3"}
_ORIGINAL = {v: k for k, v in _LITERAL.items()}
_LOOKALIKE = {"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"}
_PROTECT = str.maketrans(_LITERAL)
_UNPROTECT = str.maketrans(_ORIGINAL)
PLACEHOLDERS = "".join(_ORIGINAL)
_WORD_MARKS = frozenset("*_~")


def slack_escape(text: str) -> str:
    """Slack's escaping: the three characters its parser gives meaning."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def protect(text: str) -> str:
    """Mark the ``* _ ~ ``` of literal text, to be settled by :func:`resolve`."""
    return text.translate(_PROTECT)


def unprotect(text: str) -> str:
    """The text :func:`protect` was given."""
    return text.translate(_UNPROTECT)


class Style(NamedTuple):
    bold: bool = False
    italic: bool = False
    strike: bool = False
    code: bool = False


PLAIN = Style()
_MARKS = (("bold", "*"), ("italic", "_"), ("strike", "~"), ("code", "`"))
_TEXT, _OPEN, _CLOSE = 0, 1, 2


def _can_open(prev: str, nxt: str, mark: str) -> bool:
    return bool(nxt) and not nxt.isspace() and nxt != mark and not (prev.isalnum() or prev == mark)


def _can_close(prev: str, nxt: str, mark: str) -> bool:
    return bool(prev) and not prev.isspace() and prev != mark and not (nxt.isalnum() or nxt == mark)


def render_line(segments: list[tuple[str, Style]]) -> str:
    """Markers around runs of one style, nested in a fixed order, spaces kept outside them."""
    pieces: list[tuple[str, Style]] = []
    for text, style in segments:
        if not text:
            continue
        if style == PLAIN or style.code:
            pieces.append((text, style))
            continue
        core = text.strip(" ")
        if not core:
            pieces.append((text, style))  # decided below from its neighbours
            continue
        lead = text[: len(text) - len(text.lstrip(" "))]
        trail = text[len(text.rstrip(" ")) :]
        pieces.extend(p for p in ((lead, style), (core, style), (trail, style)) if p[0])
    # A run of spaces keeps only the styles on both sides of it.
    blank = [not text.strip(" ") for text, _ in pieces]
    after: list[Style] = [PLAIN] * len(pieces)
    following = PLAIN
    for index in range(len(pieces) - 1, -1, -1):
        after[index] = following
        if not blank[index]:
            following = pieces[index][1]
    before = PLAIN
    for index, (text, style) in enumerate(pieces):
        if not blank[index]:
            before = style
        elif style != PLAIN:
            both = zip(style, before, after[index], strict=True)
            pieces[index] = (text, Style(*(a and b and c for a, b, c in both)))
    tokens: list[str] = []
    kinds: list[int] = []
    partner: list[int] = []
    stack: list[tuple[str, int]] = []
    for text, style in pieces:
        wanted = [mark for attr, mark in _MARKS if getattr(style, attr)]
        keep = 0
        while keep < len(stack) and keep < len(wanted) and stack[keep][0] == wanted[keep]:
            keep += 1
        while len(stack) > keep:
            _close(tokens, kinds, partner, stack)
        for mark in wanted[keep:]:
            stack.append((mark, len(tokens)))
            tokens.append(mark)
            kinds.append(_OPEN)
            partner.append(-1)
        tokens.append(text)
        kinds.append(_TEXT)
        partner.append(-1)
    while stack:
        _close(tokens, kinds, partner, stack)
    _drop_unread_markers(tokens, kinds, partner)
    return "".join(tokens)


def _close(tokens: list[str], kinds: list[int], partner: list[int], stack: list) -> None:
    mark, opener = stack.pop()
    partner[opener] = len(tokens)
    partner.append(opener)
    tokens.append(mark)
    kinds.append(_CLOSE)


def _drop_unread_markers(tokens: list[str], kinds: list[int], partner: list[int]) -> None:
    """Empty every marker pair Slack would show as text; linear (a worklist of marker runs)."""

    def char_before(index: int) -> str:
        index -= 1
        while index >= 0 and not tokens[index]:
            index -= 1
        return tokens[index][-1] if index >= 0 else ""

    def char_after(index: int) -> str:
        index += 1
        while index < len(tokens) and not tokens[index]:
            index += 1
        return tokens[index][0] if index < len(tokens) else ""

    def run_around(index: int) -> list[int]:
        """The markers next to ``index`` with no text between."""
        start = index
        while start > 0 and kinds[start - 1] != _TEXT:
            start -= 1
        end = index
        while end + 1 < len(tokens) and kinds[end + 1] != _TEXT:
            end += 1
        return [i for i in range(start, end + 1) if tokens[i]]

    work = [i for i, kind in enumerate(kinds) if kind != _TEXT and tokens[i] in _WORD_MARKS]
    while work:
        index = work.pop()
        mark = tokens[index]
        if not mark or mark not in _WORD_MARKS:
            continue
        prev, nxt = char_before(index), char_after(index)
        readable = _can_open if kinds[index] == _OPEN else _can_close
        if readable(prev, nxt, mark):
            continue
        other = partner[index]
        tokens[index] = tokens[other] = ""
        work.extend(run_around(index))
        work.extend(run_around(other))


def resolve(text: str) -> str:
    """Settle the placeholders of :func:`protect`: the character where Slack leaves it alone,
    its look-alike where Slack could read it as formatting."""
    if not any(p in text for p in PLACEHOLDERS):
        return text
    backticks = text.count("`") + text.count(_LITERAL["`"])
    lines = [_resolve_line(line, backticks > 1) for line in text.split("\n")]
    return "\n".join(lines)


def _resolve_line(line: str, code_possible: bool) -> str:
    plain = line.translate(_UNPROTECT)
    size = len(plain)
    first_open: dict[str, int] = {}
    last_close: dict[str, int] = {}
    opens = [False] * size
    closes = [False] * size
    for index, char in enumerate(plain):
        if char not in _WORD_MARKS:
            continue
        prev = plain[index - 1] if index else ""
        nxt = plain[index + 1] if index + 1 < size else ""
        opens[index] = _can_open(prev, nxt, char)
        closes[index] = _can_close(prev, nxt, char)
        if opens[index]:
            first_open.setdefault(char, index)
        if closes[index]:
            last_close[char] = index
    out: list[str] = []
    for index, char in enumerate(line):
        original = _ORIGINAL.get(char)
        if original is None:
            out.append(char)
            continue
        if original == "`":
            out.append(_LOOKALIKE["`"] if code_possible else "`")
            continue
        pairs = (opens[index] and last_close.get(original, -1) > index) or (
            closes[index] and first_open.get(original, size) < index
        )
        # Next to one of our own markers of the same character, it would break that marker.
        touches = (index and line[index - 1] == original) or (
            index + 1 < size and line[index + 1] == original
        )
        out.append(_LOOKALIKE[original] if pairs or touches else original)
    return "".join(out)
