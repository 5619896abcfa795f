"""Reversible mapping between arbitrary remote ids and Matrix localparts.

Matrix localparts allow only ``a-z 0-9 . _ = - /``. Remote ids (IRC nicks with ``[]``, JIDs,
Slack ids in upper case) need escaping that is injective - two remote users must never share a
ghost - and reversible, so a user query for a ghost can be answered without a database hit.
Scheme: ``_`` -> ``__``; an upper-case letter -> ``_`` + lower case; any other byte outside the
allowed set -> ``=xx`` (hex of its UTF-8 byte).
"""

from __future__ import annotations

import functools
import re

_SAFE = set("abcdefghijklmnopqrstuvwxyz0123456789.-/")


def escape_localpart(value: str) -> str:
    out: list[str] = []
    for ch in value:
        if ch in _SAFE:
            out.append(ch)
        elif ch == "_":
            out.append("__")
        elif "A" <= ch <= "Z":
            out.append("_" + ch.lower())
        else:
            out.extend(f"={b:02x}" for b in ch.encode("utf-8"))
    return "".join(out)


_TOKEN_RE = re.compile(r"__|_[a-z]|=[0-9a-f]{2}|[a-z0-9.\-/]")


def unescape_localpart(value: str) -> str | None:
    """Inverse of :func:`escape_localpart`; None if ``value`` is not a valid escape."""
    pos = 0
    raw = bytearray()
    while pos < len(value):
        m = _TOKEN_RE.match(value, pos)
        if not m:
            return None
        tok = m.group(0)
        if tok == "__":
            raw += b"_"
        elif tok[0] == "_":
            raw += tok[1].upper().encode()
        elif tok[0] == "=":
            raw.append(int(tok[1:], 16))
        else:
            raw += tok.encode()
        pos = m.end()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return decoded if escape_localpart(decoded) == value else None


@functools.lru_cache(maxsize=256)
def template_regex(template: str) -> re.Pattern[str]:
    """``_irc_{id}`` -> a regex with one named group per ``{field}``."""
    parts = re.split(r"(\{\w+\})", template)
    pattern = "".join(
        f"(?P<{p[1:-1]}>.+?)" if p.startswith("{") and p.endswith("}") else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{pattern}$")


def localpart_of(mxid: str) -> str:
    return mxid[1:].split(":", 1)[0]


def server_of(mxid: str) -> str:
    return mxid.split(":", 1)[1] if ":" in mxid else ""
