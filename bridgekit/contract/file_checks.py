"""What a remote file is allowed to be on Matrix, and where its bytes may come from.

Shared by the connectors that copy files (Slack, Discord). Everything about a remote file is
said by whoever shared it: the name (path separators, control characters, markup), the
mimetype (a page of HTML called ``cat.png``), the size and the link. So the link is followed
only to the hosts the operator allows (:func:`allowed_file_url`; a network's token may go
with it), never through a redirect; the name is cleaned (:func:`clean_name`); the kind of
Matrix event follows the bytes, not the claim (:func:`media_kind`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

#: Matrix msgtypes for the media kinds.
MSGTYPES = {"image": "m.image", "video": "m.video", "audio": "m.audio"}
OCTET = "application/octet-stream"
_MIME_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
#: Types a browser would run or render as a page: never handed on as such.
_ACTIVE = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/xml",
        "application/xml",
    }
)
MAX_NAME = 200


def clean_name(raw: object, fallback: str = "file") -> str:
    """A file name safe to show and to send: the last path component, without control or
    format characters, at most :data:`MAX_NAME` characters, never empty or only dots."""
    text = str(raw or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    text = " ".join(text.split())[:MAX_NAME].strip()
    if not text.strip("."):
        return fallback
    return text


def sniff(data: bytes) -> str | None:
    """The media type the bytes themselves show (images, video, audio), if any."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "audio/mp4" if brand in (b"M4A ", b"M4B ") else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    return None


def clean_mime(raw: object) -> str:
    """A well-formed, passive media type: anything else is ``application/octet-stream``."""
    mime = str(raw or "").split(";")[0].strip().lower()
    if not _MIME_RE.match(mime) or mime in _ACTIVE:
        return OCTET
    return mime


def media_kind(claimed: object, data: bytes) -> tuple[str, str]:
    """(msgtype, mimetype) for a file: an image, video or audio only if the bytes are one
    (a claimed ``image/png`` that is HTML is a plain file of unknown type)."""
    mime = clean_mime(claimed)
    found = sniff(data)
    major = mime.partition("/")[0]
    if major in MSGTYPES:
        if found is not None and found.partition("/")[0] == major:
            return MSGTYPES[major], mime
        if found is not None:  # another kind of media than claimed: the bytes decide
            return MSGTYPES[found.partition("/")[0]], found
        return "m.file", OCTET
    return "m.file", mime


def host_key(host: str, port: int | None, scheme: str) -> tuple[str, int]:
    default = 443 if scheme == "https" else 80
    return host.lower().rstrip("."), port or default


def allowed_hosts(api_url: str, file_hosts: Iterable[str]) -> set[tuple[str, int]]:
    """The (host, port) pairs downloads may go to: the API's and the configured file hosts
    (``host`` for the default https port, or ``host:port``)."""
    allowed: set[tuple[str, int]] = set()
    api = urlsplit(api_url)
    if api.hostname:
        allowed.add(host_key(api.hostname, api.port, api.scheme))
    for entry in file_hosts:
        parts = urlsplit(f"//{entry}")
        if parts.hostname:
            allowed.add(host_key(parts.hostname, parts.port, "https"))
    return allowed


def allowed_file_url(url: object, allowed: set[tuple[str, int]]) -> bool:
    """Whether a file link goes to an allowed host over http(s) (no user info either)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return False
    return host_key(parts.hostname, port, parts.scheme) in allowed


def human_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"
