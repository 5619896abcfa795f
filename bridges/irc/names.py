"""Strict validation and normalisation of IRC nicks and channel names.

Channels and nicks become Matrix portals and ghost users.  If two different
IRC names could normalise to the same key, one user could take over another's
portal; if a name could carry control or invisible characters, it could spoof
another in a room list.  So every function here is strict, and the localpart
escaping is a bijection (tested as such).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = [
    "CASEMAPPINGS",
    "InvalidNameError",
    "casefold",
    "escape_localpart",
    "is_channel",
    "nick_variants",
    "sanitize_nick",
    "unescape_localpart",
    "validate_channel",
    "validate_nick",
]

_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASCII_LOWER = "abcdefghijklmnopqrstuvwxyz"

# str.lower() is deliberately not used: it folds non-ASCII letters, which the
# server does not do, and can even change a string's length ("İ").
_CASEFOLD_TABLES: dict[str, dict[int, int]] = {
    "ascii": str.maketrans(_ASCII_UPPER, _ASCII_LOWER),
    "rfc1459": str.maketrans(_ASCII_UPPER + "[]\\~", _ASCII_LOWER + "{}|^"),
    "strict-rfc1459": str.maketrans(_ASCII_UPPER + "[]\\", _ASCII_LOWER + "{}|"),
}
CASEMAPPINGS = frozenset(_CASEFOLD_TABLES)

_NICK_SPECIALS = "[]\\`_^{|}"
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
_NICK_CHARS = frozenset(_ASCII_UPPER + _ASCII_LOWER + "0123456789" + _NICK_SPECIALS + "-")
_NICK_FALLBACK = "matrixuser"

# RFC 2812 chanstring excludes NUL, BELL, CR, LF, space, comma and colon.
_CHANNEL_FORBIDDEN = frozenset("\x00\x07\r\n ,:")
# Control, format (zero-width, bidi overrides), surrogate, private-use,
# unassigned and separator characters: invisible or spoofable in a room list.
_CHANNEL_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})

# Matrix localparts (historical grammar) allow a-z 0-9 . _ = - /.
_LOCALPART_PLAIN = frozenset(_ASCII_LOWER + "0123456789-./")
_LOCALPART_RE = re.compile(r"[a-z0-9._=/-]*")


class InvalidNameError(ValueError):
    """A nick, channel or localpart is not acceptable."""


def casefold(name: str, casemapping: str = "rfc1459") -> str:
    """Fold ``name`` the way the server does, so equal names get equal keys.

    Supports ``ascii``, ``rfc1459`` (``[]\\~`` == ``{}|^``) and ``strict-rfc1459``.
    Unknown mappings raise ``ValueError`` rather than silently folding wrongly.
    """
    try:
        table = _CASEFOLD_TABLES[casemapping.lower()]
    except KeyError:
        raise ValueError(f"unsupported casemapping: {casemapping!r}") from None
    return name.translate(table)


def is_channel(name: str, chantypes: str = "#&") -> bool:
    """Whether ``name`` is addressed as a channel (starts with a channel type prefix).

    This only routes; use :func:`validate_channel` before trusting the name.
    """
    return bool(name) and bool(chantypes) and name[0] in chantypes


def validate_channel(name: str, chantypes: str = "#&", max_len: int = 64) -> str:
    """Return ``name`` unchanged if it is a safe, well-formed channel name.

    ``max_len`` counts UTF-8 bytes, as servers do (CHANNELLEN).
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError("channel name is empty")
    if not is_channel(name, chantypes):
        raise InvalidNameError(f"channel name must start with one of {chantypes!r}: {name!r}")
    if len(name) == 1:
        raise InvalidNameError(f"channel name has no body: {name!r}")
    if len(name) > max_len:  # cheap pre-check: bytes >= characters
        raise InvalidNameError(f"channel name is longer than {max_len} bytes")
    for ch in name:
        if ch in _CHANNEL_FORBIDDEN:
            raise InvalidNameError(f"channel name contains forbidden character {ch!r}")
        if unicodedata.category(ch) in _CHANNEL_FORBIDDEN_CATEGORIES:
            raise InvalidNameError(
                f"channel name contains control/invisible character U+{ord(ch):04X}"
            )
    length = len(name.encode("utf-8"))
    if length > max_len:
        raise InvalidNameError(f"channel name is {length} bytes, limit is {max_len}")
    return name


def validate_channel_key(key: str, max_len: int = 64) -> str:
    """Return ``key`` unchanged if it can be a channel key (mode +k) in a JOIN: one
    parameter, so no space, comma (a key list separator) or control character."""
    if not isinstance(key, str) or not key:
        raise InvalidNameError("channel key is empty")
    if len(key) > max_len:
        raise InvalidNameError(f"channel key is longer than {max_len} characters")
    if key[0] == ":":
        raise InvalidNameError("channel key must not start with ':'")
    for ch in key:
        if ch in " ," or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise InvalidNameError(f"channel key contains forbidden character {ch!r}")
    return key


def validate_nick(nick: str, max_len: int = 30) -> str:
    """Return ``nick`` unchanged if it is a valid RFC 2812 nick (plus '_' and '`' first)."""
    if not isinstance(nick, str) or not nick:
        raise InvalidNameError("nick is empty")
    if not _NICK_RE.fullmatch(nick):
        raise InvalidNameError(f"invalid nick: {nick!r}")
    if len(nick) > max_len:
        raise InvalidNameError(f"nick is {len(nick)} characters, limit is {max_len}")
    return nick


def _ascii_fold(text: str) -> str:
    # "José" -> "Jose": decompose, then drop the combining marks.
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def sanitize_nick(wanted: str, max_len: int = 30) -> str:
    """Turn a Matrix display name into a valid nick; always returns one.

    Accents are folded, runs of other characters become a single '_', a
    leading digit or '-' gets a '_' prefix, and an empty result falls back to
    ``matrixuser``.
    """
    if max_len < 1:
        raise ValueError("max_len must be at least 1")
    out: list[str] = []
    pending_gap = False
    for ch in _ascii_fold(wanted or ""):
        if ch in _NICK_CHARS:
            if pending_gap and out:
                out.append("_")
            pending_gap = False
            out.append(ch)
        else:
            pending_gap = True
    nick = "".join(out)
    if nick and (nick[0].isdigit() or nick[0] == "-"):
        nick = "_" + nick
    nick = nick[:max_len]
    if not nick:
        nick = _NICK_FALLBACK[:max_len]
    return validate_nick(nick, max_len)


def nick_variants(nick: str, max_len: int = 30) -> Iterator[str]:
    """Yield alternative nicks for collisions: ``nick_``, ``nick__``, ``nick1``, ``nick2``...

    The base is truncated so every variant fits ``max_len``; variants are
    distinct, valid and never equal to ``nick``.  The sequence is infinite
    unless ``max_len`` leaves no room for further numbers.
    """
    if not _NICK_RE.fullmatch(nick or ""):
        raise InvalidNameError(f"invalid nick: {nick!r}")
    seen = {nick}

    def fit(suffix: str) -> str | None:
        room = max_len - len(suffix)
        if room < 1:
            return None
        candidate = nick[:room] + suffix
        if candidate in seen:
            return None
        seen.add(candidate)
        return candidate

    for suffix in ("_", "__"):
        candidate = fit(suffix)
        if candidate is not None:
            yield candidate
    number = 1
    while len(str(number)) < max_len:
        candidate = fit(str(number))
        if candidate is not None:
            yield candidate
        number += 1


def escape_localpart(s: str) -> str:
    """Reversibly encode any string into the Matrix localpart alphabet.

    This is the spec's suggested mapping (also used by mautrix): ``A`` -> ``_a``,
    ``_`` -> ``__``, a-z 0-9 ``-./`` unchanged, every other UTF-8 byte ``=xx``.
    """
    try:
        data = s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidNameError(f"cannot encode {s!r}: {exc.reason}") from None
    out: list[str] = []
    for byte in data:
        ch = chr(byte)
        if ch in _LOCALPART_PLAIN:
            out.append(ch)
        elif "A" <= ch <= "Z":
            out.append("_" + ch.lower())
        elif ch == "_":
            out.append("__")
        else:
            out.append(f"={byte:02x}")
    return "".join(out)


def unescape_localpart(s: str) -> str:
    """Decode :func:`escape_localpart` output; reject anything it could not have produced.

    Non-canonical spellings (``=61`` for ``a``, upper-case hex) are rejected so
    that two localparts can never decode to the same name.
    """
    if not _LOCALPART_RE.fullmatch(s):
        raise InvalidNameError(f"not a valid localpart: {s!r}")
    data = bytearray()
    i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "_":
            nxt = s[i + 1] if i + 1 < n else ""
            if nxt == "_":
                data.append(ord("_"))
            elif "a" <= nxt <= "z":
                data.append(ord(nxt.upper()))
            else:
                raise InvalidNameError(f"bad '_' escape at {i} in {s!r}")
            i += 2
        elif ch == "=":
            hex_digits = s[i + 1 : i + 3]
            if len(hex_digits) != 2 or not all(c in "0123456789abcdef" for c in hex_digits):
                raise InvalidNameError(f"bad '=' escape at {i} in {s!r}")
            data.append(int(hex_digits, 16))
            i += 3
        else:
            data.append(ord(ch))
            i += 1
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidNameError(f"escaped bytes are not UTF-8 in {s!r}") from None
    if escape_localpart(decoded) != s:
        raise InvalidNameError(f"non-canonical localpart: {s!r}")
    return decoded
