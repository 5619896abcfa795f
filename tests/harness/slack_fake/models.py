"""The fake Slack's state and records: workspaces, users, conversations, files, messages,
tokens, recorded requests, Socket Mode envelopes, injected faults and push results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Team:
    id: str
    name: str
    domain: str
    bot_user_id: str = ""
    bot_id: str = ""
    icon: bytes = b""  # b"": Slack's default icon (``image_default``)
    icon_hash: str = "0"


@dataclass
class User:
    id: str
    team_id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    deleted: bool = False
    avatar: bytes = b""
    avatar_hash: str = "0"
    updated: int = 0
    email: str = ""


@dataclass
class Conversation:
    id: str
    team_id: str
    kind: str  # "public", "private", "im", "mpim"
    name: str = ""
    topic: str = ""
    purpose: str = ""
    members: list[str] = field(default_factory=list)
    creator: str = ""
    created: int = 0
    is_archived: bool = False


@dataclass
class FileObj:
    id: str
    team_id: str
    user: str
    name: str
    title: str
    mimetype: str = "application/octet-stream"
    data: bytes | None = None
    length: int = 0
    created: int = 0
    #: Fields that override the file's JSON (a test's hostile ``url_private``, say).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    subtype: str | None = None
    bot_id: str | None = None
    username: str | None = None
    icon_url: str | None = None
    edited: dict[str, str] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Token:
    value: str
    kind: str  # "bot", "user", "app"
    team_id: str
    user_id: str = ""
    revoked: str | None = None  # the error every call answers once revoked
    scopes: set[str] | None = None  # None: every scope (conversation_admin.py checks some)


@dataclass
class Recorded:
    """One request the fake got: an API call, an upload, a download or a socket connect."""

    kind: str  # "api", "upload", "download", "socket", "image"
    method: str  # the API method, or the path
    params: dict[str, Any]
    token: str | None
    at: float
    status: int | None = None
    response: dict[str, Any] | None = None
    #: The client's (host, port): calls over one kept-alive connection share it.
    peer: tuple[str, int] | None = None


@dataclass
class Envelope:
    envelope_id: str
    payload: dict[str, Any]
    type: str = "events_api"
    accepts_response_payload: bool = False
    sent: int = 0  # how many times it went out on a socket
    acked: bool = False
    ack_payload: dict[str, Any] | None = None

    def frame(self) -> dict[str, Any]:
        return {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
            "retry_attempt": max(self.sent - 1, 0),
            "retry_reason": "timeout" if self.sent > 1 else "",
        }


@dataclass
class SlackApiFault:
    kind: str  # "ratelimit", "error", "delay", "late", "disconnect", "hold"
    error: str = ""
    retry_after: int = 1
    seconds: float = 0.0
    times: int = 1
    release: asyncio.Event | None = None  # "hold": answered once set


@dataclass
class PushResult:
    status: int
    body: str
    headers: dict[str, str]


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra
