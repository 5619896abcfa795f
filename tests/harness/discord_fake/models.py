"""The fake Discord's state and records: users (bots and people), guilds, roles, members,
channels (threads and DMs too), permission overwrites, messages, attachments, webhooks,
recorded requests and injected faults. Ids are snowflakes with real timestamps."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# channel types (Discord's numbers)
GUILD_TEXT = 0
DM = 1
GUILD_VOICE = 2
GROUP_DM = 3
GUILD_CATEGORY = 4
GUILD_ANNOUNCEMENT = 5
ANNOUNCEMENT_THREAD = 10
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
GUILD_FORUM = 15
THREAD_TYPES = (ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD)

# permission bits used by the fake
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
MANAGE_WEBHOOKS = 1 << 29
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
#: what @everyone gets by default in the fake (a usual community server)
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
ALL_PERMISSIONS = (1 << 50) - 1

# gateway intents
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_WEBHOOKS = 1 << 5
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_DIRECT_MESSAGE_TYPING = 1 << 14
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT


class Snowflakes:
    """Monotonic snowflakes: milliseconds since Discord's epoch << 22, then a counter."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return str(value)


def snowflake_time(snowflake: str | int) -> datetime.datetime:
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def iso(when: datetime.datetime) -> str:
    return when.isoformat(timespec="microseconds")


@dataclass
class User:
    id: str
    username: str
    global_name: str | None = None
    avatar: str | None = None  # an avatar hash (served from the cdn)
    bot: bool = False
    token: str | None = None
    #: bots only: the application may ask for MESSAGE_CONTENT / GUILD_MEMBERS / PRESENCES
    privileged_intents: bool = True
    #: bots only: privileged intents turned off in the Developer Portal (app_flags.py)
    disabled_intents: int = 0
    application_id: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class Role:
    id: str
    guild_id: str
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    mentionable: bool = False


@dataclass
class Member:
    user_id: str
    guild_id: str
    nick: str | None = None
    avatar: str | None = None
    roles: list[str] = field(default_factory=list)
    joined_at: str = ""


@dataclass
class Overwrite:
    id: str
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0


@dataclass
class Guild:
    id: str
    name: str
    owner_id: str
    icon: str | None = None
    channels: list[str] = field(default_factory=list)  # ids, threads included
    roles: dict[str, Role] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    large: bool = False


@dataclass
class Channel:
    id: str
    type: int
    guild_id: str | None = None
    name: str | None = None
    topic: str | None = None
    parent_id: str | None = None
    position: int = 0
    recipients: list[str] = field(default_factory=list)  # DMs and group DMs
    overwrites: dict[str, Overwrite] = field(default_factory=dict)
    owner_id: str | None = None  # threads, group DMs
    archived: bool = False
    last_message_id: str | None = None
    message_count: int = 0
    nsfw: bool = False

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @property
    def is_dm(self) -> bool:
        return self.type in (DM, GROUP_DM)


@dataclass
class Attachment:
    id: str
    channel_id: str
    filename: str
    data: bytes
    content_type: str
    description: str | None = None
    width: int | None = None
    height: int | None = None
    url: str | None = None  # None: the fake's cdn link


@dataclass
class Message:
    id: str
    channel_id: str
    author_id: str
    content: str = ""
    type: int = 0  # 0 default, 19 reply, 21 thread starter, 18 thread created
    attachments: list[Attachment] = field(default_factory=list)
    embeds: list[dict[str, Any]] = field(default_factory=list)
    sticker: dict[str, Any] | None = None
    edited_timestamp: str | None = None
    reference: dict[str, Any] | None = None  # message_reference
    mentions: list[str] = field(default_factory=list)  # user ids resolved
    mention_roles: list[str] = field(default_factory=list)
    mention_everyone: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)  # emoji key -> user ids
    emoji: dict[str, dict[str, Any]] = field(default_factory=dict)  # emoji key -> emoji JSON
    webhook_id: str | None = None
    webhook_name: str | None = None
    webhook_avatar: str | None = None
    webhook_avatar_url: str | None = None  # the avatar_url the webhook was executed with
    thread_id: str | None = None  # a thread started from this message
    flags: int = 0
    nonce: str | int | None = None
    tts: bool = False
    pinned: bool = False

    @property
    def timestamp(self) -> str:
        return iso(snowflake_time(self.id))


@dataclass
class Webhook:
    id: str
    token: str
    channel_id: str
    guild_id: str
    name: str
    creator_id: str
    avatar: str | None = None
    application_id: str | None = None
    deleted: bool = False


@dataclass
class Recorded:
    """One request as the fake got it (``headers`` keep ``Authorization``: never print them)."""

    method: str
    path: str  # after the /api/v10 prefix, e.g. "/channels/1/messages"
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 0
    files: list[tuple[str, bytes, str]] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.headers.get("Authorization", "")

    def __repr__(self) -> str:  # no token in assertion messages
        return f"Recorded({self.method} {self.path} {self.query} -> {self.status}: {self.json!r})"


@dataclass
class Fault:
    """An injected answer for requests matching ``method`` and a glob ``pattern``."""

    method: str
    pattern: str
    kind: str  # "ratelimit", "error", "hold"
    times: int = 1
    retry_after: float = 1.0
    global_: bool = False
    status: int = 500
    code: int = 0
    message: str = ""
    release: asyncio.Event | None = None


class ApiError(Exception):
    """An error answer: ``raise ApiError(404, 10003, "Unknown Channel")`` in a handler."""

    def __init__(self, status: int, code: int, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors
