"""Splitting long Matrix messages into IRC-sized PRIVMSG payloads.

A server silently truncates lines over 512 bytes, and a cut in the middle of
a UTF-8 sequence produces mojibake on every client.  So text is split by
*encoded* length, preferably at spaces, and never inside a character, a
combining sequence, an emoji sequence or an mIRC colour code.
"""

from __future__ import annotations

import re
import unicodedata

from bridges.irc.lines import MAX_LINE_BYTES

__all__ = [
    "DEFAULT_HOSTLEN",
    "DEFAULT_USERLEN",
    "estimate_prefix_len",
    "max_privmsg_payload",
    "split_message",
]

#: Worst-case lengths used when the bridge does not know its own user/host yet.
DEFAULT_USERLEN = 10
DEFAULT_HOSTLEN = 63

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
# Spaces that may be broken at; no-break spaces (U+00A0, U+2007, U+202F) are excluded.
_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")
_COLOUR_CODE_RE = re.compile(
    r"\x03(?:[0-9]{1,2}(?:,[0-9]{1,2})?)?|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"
)
_LONGEST_COLOUR_CODE = 14  # \x04RRGGBB,RRGGBB


def _utf8_len(ch: str) -> int:
    code = ord(ch)
    if code < 0x80:
        return 1
    if code < 0x800:
        return 2
    if code < 0x10000:
        return 3
    return 4


def _is_space(ch: str) -> bool:
    # Not str.isspace(): it is true for \x1c-\x1f, which include mIRC italic,
    # strikethrough and underline codes.
    if ch < "\x80":
        return ch == " " or ch == "\t"
    return ch not in _NO_BREAK_SPACES and unicodedata.category(ch) == "Zs"


def _is_regional_indicator(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _extends_previous(ch: str) -> bool:
    """Whether ``ch`` belongs to the grapheme of the character before it."""
    if ch == "\u200d" or "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":
        return True  # ZWJ, variation selectors
    if "\U0001f3fb" <= ch <= "\U0001f3ff" or "\U000e0020" <= ch <= "\U000e007f":
        return True  # emoji skin tones, emoji tag sequences
    return unicodedata.category(ch) in ("Mn", "Mc", "Me")


def _can_cut(line: str, index: int) -> bool:
    """Whether a chunk may end just before ``line[index]``."""
    if index <= 0 or index >= len(line):
        return True
    prev, ch = line[index - 1], line[index]
    if _extends_previous(ch) or prev == "\u200d":
        return False
    if _is_regional_indicator(prev) and _is_regional_indicator(ch):
        run = 0
        j = index - 1
        while j >= 0 and _is_regional_indicator(line[j]):
            run += 1
            j -= 1
        if run % 2 == 1:
            return False  # would split a flag pair
    start = max(0, index - _LONGEST_COLOUR_CODE)
    end = min(len(line), index + _LONGEST_COLOUR_CODE)
    for match in _COLOUR_CODE_RE.finditer(line, start, end):
        if match.start() < index < match.end():
            return False
    return True


def _fix_surrogates(text: str) -> str:
    """Join surrogate pairs and replace lone surrogates, which cannot be UTF-8 encoded."""
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _split_line(line: str, max_bytes: int) -> list[str]:
    chunks: list[str] = []
    n = len(line)
    pos = 0
    while pos < n:
        end = pos
        used = 0
        while end < n:
            width = _utf8_len(line[end])
            if used + width > max_bytes:
                break
            used += width
            end += 1
        if end == n:
            chunks.append(line[pos:])
            break

        # Prefer the last space that leaves a non-blank chunk (not just indentation).
        first_text = pos
        while first_text < end and _is_space(line[first_text]):
            first_text += 1
        cut = -1
        for i in range(end, first_text, -1):
            if _is_space(line[i]):
                cut = i
                break
        if cut != -1:
            chunks.append(line[pos:cut].rstrip(" \t"))
            pos = cut
            while pos < n and _is_space(line[pos]):
                pos += 1
            continue

        cut = end
        while cut > pos + 1 and not _can_cut(line, cut):
            cut -= 1
        if cut == pos + 1 and not _can_cut(line, cut):
            cut = end  # one grapheme is larger than max_bytes: cut at a code point
        chunks.append(line[pos:cut])
        pos = cut
    return [chunk for chunk in chunks if chunk.strip(" \t")]


def split_message(text: str, max_bytes: int) -> list[str]:
    """Split ``text`` into non-empty chunks of at most ``max_bytes`` UTF-8 bytes each.

    Newlines always split (blank and whitespace-only lines are dropped); long
    lines break at the last space that fits, else at a grapheme boundary.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must be at least 4 (one UTF-8 code point)")
    text = _fix_surrogates(text)
    chunks: list[str] = []
    for line in _NEWLINE_RE.split(text):
        if not line.strip(" \t"):
            continue
        if len(line) * 4 <= max_bytes or len(line.encode("utf-8")) <= max_bytes:
            chunks.append(line)
        else:
            chunks.extend(_split_line(line, max_bytes))
    return chunks


def estimate_prefix_len(nick: str, user: str | None = None, host: str | None = None) -> int:
    """Bytes of the ``:nick!user@host `` source the server prepends when relaying.

    Unknown ``user``/``host`` are assumed to be as long as typical server limits.
    """
    user_len = len(user.encode("utf-8")) if user is not None else DEFAULT_USERLEN
    host_len = len(host.encode("utf-8")) if host is not None else DEFAULT_HOSTLEN
    return 1 + len(nick.encode("utf-8")) + 1 + user_len + 1 + host_len + 1


def max_privmsg_payload(
    target: str, source_prefix_len: int, tags_len: int = 0, *, command: str = "PRIVMSG"
) -> int:
    """Bytes left for text in ``:source PRIVMSG <target> :<text>\\r\\n`` within 512.

    ``source_prefix_len`` includes the leading ':' and trailing space (see
    :func:`estimate_prefix_len`).  ``tags_len`` is subtracted too, for callers
    that want to budget tags against the same 512 bytes.
    """
    overhead = (
        source_prefix_len
        + len(command.encode("utf-8"))
        + 1  # space
        + len(target.encode("utf-8"))
        + 2  # " :"
        + 2  # CRLF
        + tags_len
    )
    payload = MAX_LINE_BYTES - overhead
    if payload < 1:
        raise ValueError(f"no room for text: {overhead} bytes of overhead")
    return payload
