"""Small helpers for Slack's wire formats: ``ts`` ordering, boolean parameters, opaque
pagination cursors, ``client_msg_id`` uuids, mimetypes and a placeholder PNG."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from .models import (
    _ApiError,
)


def _ts_key(ts: str) -> tuple[int, int]:
    sec, _, frac = ts.partition(".")
    return int(sec), int((frac + "000000")[:6])


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes")


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _uncursor(cursor: str, prefix: str) -> str:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise _ApiError("invalid_cursor") from None
    if not text.startswith(prefix):
        raise _ApiError("invalid_cursor")
    return text[len(prefix) :]


def _uuid() -> str:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_MIMETYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "txt": "text/plain",
    "pdf": "application/pdf",
    "mp4": "video/mp4",
}


def _guess_mimetype(name: str) -> str:
    return _MIMETYPES.get(name.rpartition(".")[2].lower(), "application/octet-stream")


# a 1x1 transparent PNG
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
