"""Building and parsing raw IRC protocol lines.

Every line the connector sends must go through :func:`build_line`.  Text that
reaches IRC comes from Matrix users, so a stray CR, LF or NUL in a nick,
channel or message would let them smuggle a second command (``\\r\\nQUIT``)
onto the bridge's connection.  Centralising construction here means that
check exists exactly once and cannot be forgotten.

:func:`parse_line` is the inverse for incoming lines.  Servers and other
users can send anything, so it turns every malformation into a single
:class:`ParseError` instead of a zoo of ``IndexError``/``UnicodeError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_TAGS_BYTES",
    "LineError",
    "LineTooLongError",
    "Message",
    "ParseError",
    "UnsafeLineError",
    "build_line",
    "escape_tag_value",
    "parse_line",
    "unescape_tag_value",
]

#: RFC 1459 line limit, counting the trailing CRLF but not IRCv3 tags.
MAX_LINE_BYTES = 512
#: IRCv3 limit for client-sent tag data, counting the leading '@' and the trailing space.
MAX_TAGS_BYTES = 4094

_FORBIDDEN = ("\r", "\n", "\0")
_COMMAND_RE = re.compile(r"[A-Za-z]+|[0-9]{3}")
# IRCv3: key = ['+'] [vendor '/'] key_name; vendor is a host name.
_TAG_KEY_RE = re.compile(r"\+?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?/)?[A-Za-z0-9-]+")
_TAG_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class LineError(ValueError):
    """Base class for lines that must not be sent."""


class UnsafeLineError(LineError):
    """A component would break the line's framing (CR/LF/NUL) or its structure."""


class LineTooLongError(LineError):
    """The line exceeds the 512-byte (or 4094-byte tag) protocol limit."""


class ParseError(ValueError):
    """A received line is not a well-formed IRC message."""


def _check_no_framing_chars(what: str, value: str) -> None:
    for ch in _FORBIDDEN:
        if ch in value:
            raise UnsafeLineError(f"{what} contains forbidden character {ch!r}: {value!r}")


def escape_tag_value(value: str) -> str:
    """Escape a tag value per the IRCv3 message-tags spec."""
    return "".join(_TAG_ESCAPES.get(ch, ch) for ch in value)


def unescape_tag_value(value: str) -> str:
    """Reverse :func:`escape_tag_value`, leniently as the spec requires.

    An unknown escape ``\\x`` yields ``x`` and a trailing lone backslash is dropped.
    """
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "\\":
            if i + 1 < n:
                nxt = value[i + 1]
                out.append(_TAG_UNESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _build_tags(tags: dict[str, str]) -> str:
    parts: list[str] = []
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("tag keys and values must be str")
        _check_no_framing_chars("tag key", key)
        if not _TAG_KEY_RE.fullmatch(key):
            raise UnsafeLineError(f"invalid tag key: {key!r}")
        # CR and LF in values are representable (\r, \n escapes); NUL is not.
        if "\0" in value:
            raise UnsafeLineError(f"tag value contains NUL: {value!r}")
        parts.append(f"{key}={escape_tag_value(value)}" if value else key)
    return "@" + ";".join(parts) + " "


def build_line(command: str, *params: str, tags: dict[str, str] | None = None) -> bytes:
    """Build one CRLF-terminated wire line, refusing anything that could inject a command.

    Only the last parameter may be empty, contain spaces or start with ':'; it
    then gets the ':' trailing prefix.  Tag values are escaped (so they may hold
    CR/LF); every other component containing CR, LF or NUL is rejected.
    """
    if not isinstance(command, str):
        raise TypeError("command must be str")
    _check_no_framing_chars("command", command)
    if not _COMMAND_RE.fullmatch(command):
        raise UnsafeLineError(f"invalid command: {command!r}")

    parts = [command]
    last = len(params) - 1
    for index, param in enumerate(params):
        if not isinstance(param, str):
            raise TypeError(f"parameter {index} must be str, not {type(param).__name__}")
        _check_no_framing_chars(f"parameter {index}", param)
        needs_trailing = param == "" or " " in param or param.startswith(":")
        if needs_trailing:
            if index != last:
                raise UnsafeLineError(
                    f"only the last parameter may be empty, contain spaces or start "
                    f"with ':': parameter {index} is {param!r}"
                )
            parts.append(":" + param)
        else:
            parts.append(param)

    body = (" ".join(parts) + "\r\n").encode("utf-8")
    if len(body) > MAX_LINE_BYTES:
        raise LineTooLongError(f"line is {len(body)} bytes, limit is {MAX_LINE_BYTES}")

    if not tags:
        return body
    tag_bytes = _build_tags(tags).encode("utf-8")
    if len(tag_bytes) > MAX_TAGS_BYTES:
        raise LineTooLongError(f"tags are {len(tag_bytes)} bytes, limit is {MAX_TAGS_BYTES}")
    return tag_bytes + body


@dataclass
class Message:
    """One parsed IRC message.

    ``source`` is the raw prefix without ':'; for ``nick!user@host`` it is also
    split into ``nick``/``user``/``host``.  A bare server name lands in ``nick``
    with ``user``/``host`` None, as in most IRC libraries.
    """

    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    nick: str | None = None
    user: str | None = None
    host: str | None = None

    @property
    def prefix(self) -> str | None:
        """Alias for :attr:`source` (RFC 1459 naming)."""
        return self.source

    @property
    def trailing(self) -> str | None:
        """The last parameter, where the text of PRIVMSG/NOTICE/numerics usually is."""
        return self.params[-1] if self.params else None

    def param(self, index: int, default: str | None = None) -> str | None:
        """Parameter ``index`` or ``default``, so callers need no bounds checks."""
        if -len(self.params) <= index < len(self.params):
            return self.params[index]
        return default


def _decode(raw: bytes | bytearray | memoryview) -> str:
    data = bytes(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Legacy clients still send latin-1/cp1252; never lose the message over it.
        return data.decode("latin-1")


def _split_source(source: str) -> tuple[str | None, str | None, str | None]:
    nick, sep, rest = source.partition("!")
    if sep:
        user, at, host = rest.partition("@")
        return nick or None, user or None, (host or None) if at else None
    nick, at, host = source.partition("@")
    return nick or None, None, (host or None) if at else None


def parse_line(raw: bytes | str) -> Message:
    """Parse one received line (with or without CRLF) into a :class:`Message`.

    Raises only :class:`ParseError`, whatever the input.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        line = _decode(raw)
    elif isinstance(raw, str):
        line = raw
    else:
        raise ParseError(f"cannot parse {type(raw).__name__} as an IRC line")

    line = line.rstrip("\r\n")
    if "\r" in line or "\n" in line:
        raise ParseError("line contains an embedded CR or LF")
    if "\0" in line:
        raise ParseError("line contains NUL")

    # Every bridged connection in a channel parses every line of it, so this stays on str
    # methods (partition/lstrip) rather than per-character Python loops.
    rest = line.lstrip(" ")
    tags: dict[str, str] = {}
    if rest[:1] == "@":
        raw_tags, _, rest = rest[1:].partition(" ")
        for item in raw_tags.split(";"):
            key, _, value = item.partition("=")
            if key:
                tags[key] = unescape_tag_value(value)
        rest = rest.lstrip(" ")

    source = nick = user = host = None
    if rest[:1] == ":":
        source, _, rest = rest[1:].partition(" ")
        if not source:
            raise ParseError("empty source prefix")
        nick, user, host = _split_source(source)
        rest = rest.lstrip(" ")

    command, _, rest = rest.partition(" ")
    if not command:
        raise ParseError("missing command")
    if not _COMMAND_RE.fullmatch(command):
        raise ParseError(f"invalid command: {command[:32]!r}")

    params: list[str] = []
    while True:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest[0] == ":":
            params.append(rest[1:])
            break
        token, _, rest = rest.partition(" ")
        params.append(token)

    return Message(
        command=command.upper(),
        params=params,
        tags=tags,
        source=source,
        nick=nick,
        user=user,
        host=host,
    )


def parse_server_time(value: str | None) -> float | None:
    """The IRCv3 ``time`` tag (ISO 8601, UTC) as a Unix timestamp; None if absent or bad."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
