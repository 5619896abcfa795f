"""A fake Slack that speaks Slack's wire protocols, for tests that drive the real slack-sdk.

``FakeSlack`` is an aiohttp app on a free loopback port that holds its own state (teams, users,
conversations, messages, files, custom emoji) and records every request it gets. It serves:

- the Web API at ``{fake.url}/api/{method}`` (point ``AsyncWebClient(base_url=fake.api_url)``
  at it): parameters from the query string, a form body or a JSON body, the token from
  ``Authorization: Bearer`` or a ``token`` parameter; answers ``{"ok": true, ...}`` or
  ``{"ok": false, "error": "..."}`` with HTTP 200, and ``429`` with ``Retry-After`` when rate
  limited, as Slack does;
- the Socket Mode websocket that ``apps.connections.open`` hands out (``ws://127.0.0.1:PORT/link/
  ?ticket=...``; one use per ticket; needs the ``xapp-`` token): ``hello`` on connect,
  ``events_api`` envelopes, acks recorded by ``envelope_id``, ``disconnect`` frames on demand,
  and unacknowledged envelopes sent again on the next connection with ``retry_attempt``
  incremented and ``retry_reason`` ``"timeout"``;
- files upload v2: ``files.getUploadURLExternal`` hands out an upload URL on the fake, the
  client POSTs the bytes there, ``files.completeUploadExternal`` shares them (a ``file_share``
  message); ``url_private`` downloads need a bearer token of the file's team (without one the
  fake redirects to an HTML sign-in page with a 200, as Slack does: a client that does not check
  the content type stores HTML as the file);
- public avatar and custom emoji images.

It also pushes Events API requests over HTTP to a URL (signed with the signing secret:
``v0=HMAC-SHA256("v0:{ts}:{body}")``), including ``url_verification`` and deliberately stale or
badly signed pushes.

Tests act as Slack users through methods that store the change and emit the event Slack would
send (``post_user_message``, ``edit_message``, ``delete_message``, ``add_reaction``,
``update_user``, ``join``, ``leave``, ``rename`` ...). Events go to the app only for
conversations its bot user is a member of (``user_change`` always), as Slack's subscriptions do.

Faults: ``rate_limit(method)``, ``fail(method, error)``, ``delay(method, seconds)``,
``disconnect(method)`` (the HTTP connection closed with no answer), ``revoke(token, error)``
(every later call with that token fails), ``drop_sockets()`` (TCP closed without a close
frame), ``request_refresh()`` (a ``disconnect`` frame), ``ack_timeout`` (unacknowledged
envelopes resent on the live socket), ``push_retry_delays`` (failed HTTP pushes retried with
``X-Slack-Retry-Num``).

What this does not model is listed in ``LIMITS`` below.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bridgekit.testing.ports import free_port

__all__ = ["FakeSlack", "SlackApiFault", "LIMITS"]

LIMITS = """
Not modelled: OAuth scopes (every token may call every method), Enterprise Grid, shared
channels, blocks / rich_text (messages carry ``text`` only), message tombstones (a deleted
thread parent disappears with its replies still stored), typing and read markers, presence,
pins, bookmarks, Slack's real redelivery timings (``ack_timeout`` and ``push_retry_delays``
are set by the test), the ``too_many_websockets`` limit and delivery spread over several
connections (the newest live connection gets every envelope), per-method rate tiers (limits
are injected, never computed), ``interactive`` / ``slash_commands`` envelopes, enterprise
``authorizations``, ``files.list`` and file comments, the ``message_changed`` Slack may send
for a thread parent when a reply arrives, the delay before a ``file_share`` appears, and
events on behalf of users (delivery follows the bot user's memberships only, and
``authorizations`` names only the bot).
Shapes were written from Slack's documentation and slack-sdk's own fixtures, not captured
from live Slack.
"""


# --- state ---------------------------------------------------------------------------------


@dataclass
class Team:
    id: str
    name: str
    domain: str
    bot_user_id: str = ""
    bot_id: str = ""


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
    kind: str  # "ratelimit", "error", "delay", "disconnect"
    error: str = ""
    retry_after: int = 1
    seconds: float = 0.0
    times: int = 1


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


class _Socket:
    """One Socket Mode connection: frames go out in order through one writer task."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self.ws = ws
        self.transport = transport
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None

    async def write(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError):
                return


class FakeSlack:
    """See the module docstring. Use as ``async with FakeSlack() as fake:``."""

    def __init__(
        self,
        *,
        signing_secret: str | None = None,
        app_id: str = "A0FAKEAPP1",
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.api_url = self.url + "/api/"
        self.app_id = app_id
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.verification_token = secrets.token_hex(12)
        self.teams: dict[str, Team] = {}
        self.users: dict[str, User] = {}
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, list[Message]] = {}  # by channel, in ts order
        self.files: dict[str, FileObj] = {}
        self.emoji: dict[str, dict[str, str]] = {}  # team -> name -> url or "alias:x"
        self.emoji_images: dict[str, bytes] = {}
        self.tokens: dict[str, Token] = {}
        self.requests: list[Recorded] = []
        self.envelopes: list[Envelope] = []
        self.acks: dict[str, dict[str, Any] | None] = {}
        self.pushes: list[tuple[dict[str, Any], PushResult]] = []
        self.events_url: str | None = None  # also push every event here over HTTP
        self.socket_mode = True
        # Slack resends an unacknowledged envelope (retry_reason "timeout", up to 3 retries);
        # None: only on a new connection or redeliver_unacked()
        self.ack_timeout: float | None = None
        # waits before each retry of a failed Events API push (Slack: 0 s, 1 min, 5 min)
        self.push_retry_delays: tuple[float, ...] = ()
        self._faults: dict[str, deque[SlackApiFault]] = {}
        self._tickets: set[str] = set()
        self._uploads: dict[str, str] = {}  # upload ticket -> file id
        self._sockets: list[_Socket] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiters: list[asyncio.Event] = []
        self._last_ts = (0, 0)
        self._ids = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/api/{method}", self._api)
        self.app.router.add_get("/link/", self._link)
        self.app.router.add_post("/upload/v1/{ticket}", self._upload)
        self.app.router.add_get("/files-pri/{tf}/{name}", self._download)
        self.app.router.add_get("/files-pri/{tf}/download/{name}", self._download)
        self.app.router.add_get("/signin", self._signin)
        self.app.router.add_get("/avatars/{user}/{hash}_{size}.png", self._avatar)
        self.app.router.add_get("/emoji/{team}/{name}.png", self._emoji_image)
        self._methods: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
            "api.test": (self._api_test, ()),
            "auth.test": (self._auth_test, ("bot", "user")),
            "apps.connections.open": (self._connections_open, ("app",)),
            "users.info": (self._users_info, ("bot", "user")),
            "users.list": (self._users_list, ("bot", "user")),
            "conversations.info": (self._conv_info, ("bot", "user")),
            "conversations.list": (self._conv_list, ("bot", "user")),
            "conversations.members": (self._conv_members, ("bot", "user")),
            "conversations.history": (self._conv_history, ("bot", "user")),
            "conversations.replies": (self._conv_replies, ("bot", "user")),
            "conversations.open": (self._conv_open, ("bot", "user")),
            "chat.postMessage": (self._post_message, ("bot", "user")),
            "chat.update": (self._chat_update, ("bot", "user")),
            "chat.delete": (self._chat_delete, ("bot", "user")),
            "reactions.add": (self._reactions_add, ("bot", "user")),
            "reactions.remove": (self._reactions_remove, ("bot", "user")),
            "emoji.list": (self._emoji_list, ("bot", "user")),
            "files.getUploadURLExternal": (self._get_upload_url, ("bot", "user")),
            "files.completeUploadExternal": (self._complete_upload, ("bot", "user")),
            "files.info": (self._files_info, ("bot", "user")),
        }

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self._session = aiohttp.ClientSession(trust_env=False)
        return self

    async def stop(self) -> None:
        for sock in list(self._sockets):
            sock.queue.put_nowait(None)
            await sock.ws.close()
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- ids -------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}0{self._ids:08X}"

    def new_ts(self) -> str:
        """A message timestamp later than every earlier one (Slack's ids are ``sec.usec``)."""
        now = time.time()
        key = (int(now), int((now % 1) * 1_000_000))
        if key <= self._last_ts:
            sec, usec = self._last_ts
            key = (sec + 1, 0) if usec >= 999_999 else (sec, usec + 1)
        self._last_ts = key
        return f"{key[0]}.{key[1]:06d}"

    # --- setting up state ----------------------------------------------------------------------

    def add_team(self, name: str = "Fake Team", domain: str | None = None) -> Team:
        """A workspace with its app installed: a bot user, a bot token and the app token."""
        team = Team(self._id("T"), name, domain or name.lower().replace(" ", "-"))
        self.teams[team.id] = team
        bot = self.add_user(team.id, "bridgebot", real_name="Bridge Bot", is_bot=True)
        team.bot_user_id = bot.id
        team.bot_id = bot.bot_id or ""
        return team

    def add_user(
        self,
        team_id: str,
        name: str,
        *,
        real_name: str = "",
        display_name: str = "",
        is_bot: bool = False,
        avatar: bytes = b"",
    ) -> User:
        user = User(
            self._id("U"),
            team_id,
            name,
            real_name or name.title(),
            display_name,
            is_bot=is_bot,
            bot_id=self._id("B") if is_bot else None,
            updated=int(time.time()),
        )
        self._set_avatar(user, avatar)
        self.users[user.id] = user
        return user

    def bot_token(self, team_id: str) -> str:
        return self._token("xoxb", "bot", team_id, self.teams[team_id].bot_user_id)

    def user_token(self, user_id: str) -> str:
        return self._token("xoxp", "user", self.users[user_id].team_id, user_id)

    def app_token(self) -> str:
        return self._token("xapp", "app", "", "")

    def _token(self, prefix: str, kind: str, team_id: str, user_id: str) -> str:
        for token in self.tokens.values():
            if (token.kind, token.team_id, token.user_id) == (kind, team_id, user_id):
                if token.revoked is None:
                    return token.value
        value = f"{prefix}-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
        self.tokens[value] = Token(value, kind, team_id, user_id)
        return value

    def add_conversation(
        self,
        team_id: str,
        name: str = "",
        *,
        kind: str = "public",
        members: list[str] | None = None,
        topic: str = "",
        purpose: str = "",
        with_bot: bool = True,
    ) -> Conversation:
        """A channel (``public``/``private``), DM (``im``) or group DM (``mpim``). The bot user is
        a member unless ``with_bot=False``."""
        prefix = {"public": "C", "private": "C", "im": "D", "mpim": "C"}[kind]
        members = list(members or [])
        bot = self.teams[team_id].bot_user_id
        if with_bot and bot not in members:
            members.append(bot)
        conv = Conversation(
            self._id(prefix),
            team_id,
            kind,
            name,
            topic,
            purpose,
            members,
            creator=members[0] if members else "",
            created=int(time.time()),
        )
        if kind == "mpim" and not name:
            conv.name = "mpdm-" + "--".join(self.users[m].name for m in members) + "-1"
        self.conversations[conv.id] = conv
        self.messages[conv.id] = []
        return conv

    def add_file(
        self, team_id: str, user: str, name: str, data: bytes, mimetype: str = ""
    ) -> FileObj:
        f = FileObj(
            self._id("F"),
            team_id,
            user,
            name,
            name,
            mimetype or _guess_mimetype(name),
            data,
            len(data),
            int(time.time()),
        )
        self.files[f.id] = f
        return f

    def add_emoji(
        self, team_id: str, name: str, data: bytes = b"", *, alias_for: str | None = None
    ) -> str:
        if alias_for is not None:
            value = f"alias:{alias_for}"
        else:
            self.emoji_images[f"{team_id}/{name}"] = data or _PNG
            value = f"{self.url}/emoji/{team_id}/{name}.png"
        self.emoji.setdefault(team_id, {})[name] = value
        return value

    # --- faults ----------------------------------------------------------------------------

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get a 429 with ``Retry-After``."""
        self._faults.setdefault(method, deque()).append(
            SlackApiFault("ratelimit", "ratelimited", retry_after=retry_after, times=times)
        )

    def fail(self, method: str, error: str = "invalid_auth", times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._faults.setdefault(method, deque()).append(SlackApiFault("error", error, times=times))

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``seconds`` late."""
        self._faults.setdefault(method, deque()).append(
            SlackApiFault("delay", seconds=seconds, times=times)
        )

    def disconnect(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get their TCP connection closed with no
        answer (the call is recorded with status 0 and has no effect)."""
        self._faults.setdefault(method, deque()).append(SlackApiFault("disconnect", times=times))

    def revoke(self, token: str, error: str = "token_revoked") -> None:
        """Every later call with ``token`` answers ``error`` (``token_revoked``,
        ``invalid_auth``, ``account_inactive``). Open sockets stay up (drop them to force a new
        ``apps.connections.open``)."""
        self.tokens[token].revoked = error

    async def drop_sockets(self) -> int:
        """Close every Socket Mode connection's TCP stream without a close frame."""
        n = 0
        for sock in list(self._sockets):
            if sock.transport is not None:
                sock.transport.abort()
                n += 1
        return n

    async def request_refresh(
        self, reason: str = "refresh_requested", close_after: float | None = None
    ) -> int:
        """Send a ``disconnect`` frame on every connection (the client should reconnect with a
        fresh ``apps.connections.open``); with ``close_after``, close those connections that
        many seconds later, as Slack does (about 10 s after ``warning``)."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        socks = list(self._sockets)
        for sock in socks:
            sock.queue.put_nowait(frame)
        if close_after is not None:

            async def close_later() -> None:
                await asyncio.sleep(close_after)
                for sock in socks:
                    await sock.ws.close()

            self._spawn(close_later())
        return len(socks)

    @property
    def connected_sockets(self) -> int:
        return sum(1 for s in self._sockets if not s.ws.closed)

    # --- recording and waiting ---------------------------------------------------------------

    def _notify(self) -> None:
        for ev in self._waiters:
            ev.set()

    async def wait_until(self, check: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``check()`` is truthy (rechecked whenever the fake records something)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = check()
            if result:
                return result
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"fake Slack: condition not met in {timeout}s")
            ev = asyncio.Event()
            self._waiters.append(ev)
            try:
                await asyncio.wait_for(ev.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass
            finally:
                self._waiters.remove(ev)

    async def wait_for(
        self, predicate: Callable[[Recorded], bool], timeout: float = 5.0, *, completed=True
    ) -> Recorded:
        """The first recorded request matching ``predicate`` (answered, unless
        ``completed=False``), waiting for it if need be."""

        def find() -> Recorded | None:
            for r in self.requests:
                if (r.status is not None or not completed) and predicate(r):
                    return r
            return None

        return await self.wait_until(find, timeout)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
        await self.wait_until(lambda: envelope_id in self.acks, timeout)
        return self.acks[envelope_id]

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.kind == "api" and r.method == method]

    # --- the Web API surface -----------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        params[key] = value
        return params

    @staticmethod
    def _bearer(request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :].strip()
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        token_value = params.pop("token", None) or self._bearer(request)
        rec = Recorded("api", method, params, token_value, time.time())
        self.requests.append(rec)
        self._notify()
        status, body, headers = await self._answer(method, params, token_value)
        rec.status, rec.response = status, body
        self._notify()
        if status == 0:
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("fake Slack: connection dropped on purpose")
        return web.json_response(body, status=status, headers=headers)

    async def _answer(
        self, method: str, params: dict[str, Any], token_value: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        faults = self._faults.get(method)
        while faults:
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.popleft()
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
                continue
            if fault.kind == "disconnect":
                return 0, {}, {}
            if fault.kind == "ratelimit":
                return (
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(fault.retry_after)},
                )
            return 200, {"ok": False, "error": fault.error}, {}
        entry = self._methods.get(method)
        if entry is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        handler, kinds = entry
        try:
            token = None
            if kinds:
                if not token_value:
                    raise _ApiError("not_authed")
                token = self.tokens.get(token_value)
                if token is None:
                    raise _ApiError("invalid_auth")
                if token.revoked:
                    raise _ApiError(token.revoked)
                if token.kind not in kinds:
                    raise _ApiError("not_allowed_token_type")
            result = handler(token, params)
        except _ApiError as e:
            return 200, {"ok": False, "error": e.error, **e.extra}, {}
        return 200, {"ok": True, **result}, {}

    # -- helpers for the handlers

    def _conv_for(self, token: Token, params: dict[str, Any], key: str = "channel") -> Conversation:
        cid = params.get(key)
        if not cid:
            raise _ApiError("channel_not_found")
        conv = self.conversations.get(str(cid))
        if conv is None or conv.team_id != token.team_id:
            raise _ApiError("channel_not_found")
        if conv.kind != "public" and token.user_id not in conv.members:
            raise _ApiError("channel_not_found")
        return conv

    def _require_member(self, token: Token, conv: Conversation) -> None:
        if token.user_id not in conv.members:
            raise _ApiError("not_in_channel")

    def _find_message(self, channel: str, ts: str) -> Message:
        for msg in self.messages.get(channel, []):
            if msg.ts == ts:
                return msg
        raise _ApiError("message_not_found")

    @staticmethod
    def _limit(params: dict[str, Any], default: int, maximum: int = 1000) -> int:
        try:
            limit = int(params.get("limit") or default)
        except ValueError:
            raise _ApiError("invalid_limit") from None
        return default if limit <= 0 else min(limit, maximum)

    def _page_by_offset(
        self, items: list[Any], params: dict[str, Any], default: int
    ) -> tuple[list[Any], str]:
        start = 0
        if params.get("cursor"):
            try:
                start = int(_uncursor(str(params["cursor"]), "offset:"))
            except ValueError:
                raise _ApiError("invalid_cursor") from None
        limit = self._limit(params, default)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return page, _cursor(f"offset:{start + limit}") if more else ""

    # -- objects as the API shows them

    def user_json(self, user: User) -> dict[str, Any]:
        base = f"{self.url}/avatars/{user.id}/{user.avatar_hash}"
        profile: dict[str, Any] = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "avatar_hash": user.avatar_hash,
            "team": user.team_id,
            **{f"image_{s}": f"{base}_{s}.png" for s in (24, 32, 48, 72, 192, 512)},
        }
        if user.is_bot:
            profile["bot_id"] = user.bot_id
        return {
            "id": user.id,
            "team_id": user.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "tz": "Europe/London",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": user.updated,
        }

    def conversation_json(self, conv: Conversation, viewer: str = "") -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": conv.id,
            "created": conv.created,
            "is_archived": conv.is_archived,
            "is_im": conv.kind == "im",
            "is_mpim": conv.kind == "mpim",
            "is_private": conv.kind != "public",
            "context_team_id": conv.team_id,
        }
        if conv.kind == "im":
            other = [m for m in conv.members if m != viewer] or conv.members
            d.update(user=other[0], is_user_deleted=False, is_open=True)
            return d
        d.update(
            name=conv.name,
            name_normalized=conv.name,
            is_channel=conv.kind == "public",
            is_group=conv.kind == "private",
            is_general=False,
            creator=conv.creator,
            is_member=viewer in conv.members,
            topic={"value": conv.topic, "creator": conv.creator, "last_set": 0},
            purpose={"value": conv.purpose, "creator": conv.creator, "last_set": 0},
            num_members=len(conv.members),
        )
        return d

    def file_json(self, f: FileObj) -> dict[str, Any]:
        base = f"{self.url}/files-pri/{f.team_id}-{f.id}"
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title,
            "mimetype": f.mimetype,
            "filetype": f.name.rpartition(".")[2] if "." in f.name else "binary",
            "user": f.user,
            "user_team": f.team_id,
            "size": f.length,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"{base}/{f.name}",
            "url_private_download": f"{base}/download/{f.name}",
            "permalink": f"{self.url}/files/{f.user}/{f.id}/{f.name}",
        }

    def message_json(self, msg: Message, *, with_channel: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "message", "ts": msg.ts, "text": msg.text}
        if msg.subtype:
            d["subtype"] = msg.subtype
        if msg.user and msg.subtype != "bot_message":
            # a bot_message (a bot post under a custom username) has no user, only bot_id
            d["user"] = msg.user
        conv = self.conversations.get(msg.channel)
        if conv is not None:
            d["team"] = conv.team_id
        if msg.bot_id:
            d["bot_id"] = msg.bot_id
            d["app_id"] = self.app_id
            bot_user = self.users.get(msg.user or "")
            if bot_user is not None:
                d["bot_profile"] = {
                    "id": msg.bot_id,
                    "app_id": self.app_id,
                    "name": bot_user.real_name,
                    "deleted": False,
                    "team_id": bot_user.team_id,
                    "user_id": bot_user.id,
                }
        if msg.username:
            d["username"] = msg.username
        if msg.icon_url:
            d["icons"] = {"image_48": msg.icon_url}
        if msg.thread_ts:
            d["thread_ts"] = msg.thread_ts
            if msg.thread_ts != msg.ts:
                parent = self._maybe_message(msg.channel, msg.thread_ts)
                if parent is not None and parent.user:
                    d["parent_user_id"] = parent.user
        replies = self._replies(msg.channel, msg.ts) if msg.thread_ts == msg.ts else []
        if replies:
            d["reply_count"] = len(replies)
            d["reply_users"] = sorted({r.user for r in replies if r.user})
            d["reply_users_count"] = len(d["reply_users"])
            d["latest_reply"] = replies[-1].ts
        if msg.edited:
            d["edited"] = dict(msg.edited)
        if msg.reactions:
            d["reactions"] = [
                {"name": n, "users": list(u), "count": len(u)} for n, u in msg.reactions.items()
            ]
        if msg.files:
            d["files"] = [self.file_json(self.files[f]) for f in msg.files]
            d["upload"] = True
        d.update(msg.extra)
        if with_channel:
            d["channel"] = msg.channel
        return d

    def _maybe_message(self, channel: str, ts: str) -> Message | None:
        for msg in self.messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _replies(self, channel: str, thread_ts: str) -> list[Message]:
        return [
            m
            for m in self.messages.get(channel, [])
            if m.thread_ts == thread_ts and m.ts != thread_ts
        ]

    # -- methods

    def _api_test(self, token: Token | None, params: dict[str, Any]) -> dict[str, Any]:
        return {"args": {k: v for k, v in params.items() if k != "token"}}

    def _auth_test(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        team = self.teams[token.team_id]
        user = self.users[token.user_id]
        d = {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": user.name,
            "team_id": team.id,
            "user_id": user.id,
            "is_enterprise_install": False,
        }
        if token.kind == "bot":
            d["bot_id"] = user.bot_id
        return d

    def _connections_open(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        host = self.url.removeprefix("http://")
        return {"url": f"ws://{host}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _users_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None or user.team_id != token.team_id:
            raise _ApiError("user_not_found")
        return {"user": self.user_json(user)}

    def _users_list(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in self.users.values() if u.team_id == token.team_id]
        page, nxt = self._page_by_offset(users, params, default=len(users) or 1)
        return {
            "members": [self.user_json(u) for u in page],
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": nxt},
        }

    def _conv_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        return {"channel": self.conversation_json(conv, token.user_id)}

    def _conv_list(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        types = str(params.get("types") or "public_channel").split(",")
        kinds = {"public_channel": "public", "private_channel": "private", "im": "im"}
        wanted = {kinds.get(t.strip(), t.strip()) for t in types}
        exclude_archived = _bool(params.get("exclude_archived", False))
        convs = [
            c
            for c in self.conversations.values()
            if c.team_id == token.team_id
            and c.kind in wanted
            and (c.kind == "public" or token.user_id in c.members)
            and not (exclude_archived and c.is_archived)
        ]
        page, nxt = self._page_by_offset(convs, params, default=100)
        return {
            "channels": [self.conversation_json(c, token.user_id) for c in page],
            "response_metadata": {"next_cursor": nxt},
        }

    def _conv_members(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        page, nxt = self._page_by_offset(list(conv.members), params, default=100)
        return {"members": page, "response_metadata": {"next_cursor": nxt}}

    def _window(self, msgs: list[Message], params: dict[str, Any]) -> list[Message]:
        inclusive = _bool(params.get("inclusive", False))
        oldest = _ts_key(str(params["oldest"])) if params.get("oldest") else None
        latest = _ts_key(str(params["latest"])) if params.get("latest") else None

        def inside(m: Message) -> bool:
            k = _ts_key(m.ts)
            if oldest is not None and (k < oldest or (k == oldest and not inclusive)):
                return False
            if latest is not None and (k > latest or (k == latest and not inclusive)):
                return False
            return True

        return [m for m in msgs if inside(m)]

    def _conv_history(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        self._require_member(token, conv)
        msgs = [
            m
            for m in self.messages[conv.id]
            if m.thread_ts is None or m.thread_ts == m.ts or m.reply_broadcast
        ]
        msgs = list(reversed(self._window(msgs, params)))  # newest first
        if params.get("cursor"):
            start = _ts_key(_uncursor(str(params["cursor"]), "next_ts:"))
            msgs = [m for m in msgs if _ts_key(m.ts) <= start]
        limit = self._limit(params, 100, 999)
        page, rest = msgs[:limit], msgs[limit:]
        return {
            "messages": [self.message_json(m) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
            "response_metadata": {"next_cursor": _cursor(f"next_ts:{rest[0].ts}") if rest else ""},
        }

    def _conv_replies(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        self._require_member(token, conv)
        ts = str(params.get("ts") or "")
        if not ts:
            raise _ApiError("invalid_arguments")
        parent = self._maybe_message(conv.id, ts)
        if parent is None:
            raise _ApiError("thread_not_found")
        root = parent.thread_ts or parent.ts
        msgs = [m for m in self.messages[conv.id] if m.ts == root or m.thread_ts == root]
        msgs = self._window(msgs, params)
        if params.get("cursor"):
            start = _ts_key(_uncursor(str(params["cursor"]), "next_ts:"))
            msgs = [m for m in msgs if _ts_key(m.ts) >= start]
        limit = self._limit(params, 1000)
        page, rest = msgs[:limit], msgs[limit:]
        return {
            "messages": [self.message_json(m) for m in page],
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": _cursor(f"next_ts:{rest[0].ts}") if rest else ""},
        }

    def _conv_open(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            conv = self._conv_for(token, params)
            return {"no_op": True, "already_open": True, "channel": {"id": conv.id}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _ApiError("users_list_not_supplied")
        for uid in users:
            u = self.users.get(uid)
            if u is None or u.team_id != token.team_id:
                raise _ApiError("user_not_found")
        wanted = set(users) | {token.user_id}
        kind = "im" if len(wanted) <= 2 else "mpim"
        for conv in self.conversations.values():
            if conv.kind == kind and conv.team_id == token.team_id and set(conv.members) == wanted:
                full = self.conversation_json(conv, token.user_id)
                ch = full if _bool(params.get("return_im", False)) else {"id": conv.id}
                return {"no_op": True, "already_open": True, "channel": ch}
        conv = self.add_conversation(
            token.team_id, kind=kind, members=[token.user_id, *users], with_bot=False
        )
        full = self.conversation_json(conv, token.user_id)
        return {"channel": full if _bool(params.get("return_im", False)) else {"id": conv.id}}

    def _post_message(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        if conv.is_archived:
            raise _ApiError("is_archived")
        self._require_member(token, conv)
        text = str(params.get("text") or "")
        if not text and not params.get("blocks") and not params.get("attachments"):
            raise _ApiError("no_text")
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        if thread_ts is not None:
            parent = self._maybe_message(conv.id, thread_ts)
            if parent is None:
                raise _ApiError("thread_not_found")  # Slack posts it unthreaded; stricter here
            thread_ts = parent.thread_ts or parent.ts
            parent.thread_ts = thread_ts
        user = self.users[token.user_id]
        msg = Message(conv.id, self.new_ts(), text, user=user.id, thread_ts=thread_ts)
        if thread_ts and _bool(params.get("reply_broadcast", False)):
            msg.reply_broadcast = True
            msg.subtype = "thread_broadcast"
        if token.kind == "bot":
            msg.bot_id = user.bot_id
            username = params.get("username")
            icon_url = params.get("icon_url")
            if username or icon_url:
                # chat:write.customize: shown as a bot message under the given name
                msg.subtype = msg.subtype or "bot_message"
                msg.username = str(username) if username else None
                msg.icon_url = str(icon_url) if icon_url else None
        self._store(msg)
        self._emit_message(msg)
        return {"channel": conv.id, "ts": msg.ts, "message": self.message_json(msg)}

    def _chat_update(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        msg = self._find_message(conv.id, str(params.get("ts") or ""))
        if msg.user != token.user_id:
            raise _ApiError("cant_update_message")
        text = str(params.get("text") or "")
        if not text and not params.get("blocks"):
            raise _ApiError("no_text")
        self._edit(msg, text, token.user_id)
        return {
            "channel": conv.id,
            "ts": msg.ts,
            "text": msg.text,
            "message": self.message_json(msg),
        }

    def _chat_delete(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        msg = self._find_message(conv.id, str(params.get("ts") or ""))
        if msg.user != token.user_id:
            raise _ApiError("cant_delete_message")
        self._delete(msg)
        return {"channel": conv.id, "ts": msg.ts}

    def _reaction_target(self, token: Token, params: dict[str, Any]) -> tuple[Message, str]:
        conv = self._conv_for(token, params)
        msg = self._find_message(conv.id, str(params.get("timestamp") or ""))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise _ApiError("invalid_name")
        return msg, name

    def _reactions_add(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction_target(token, params)
        if token.user_id in msg.reactions.get(name, []):
            raise _ApiError("already_reacted")
        self._react(msg, token.user_id, name, True)
        return {}

    def _reactions_remove(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction_target(token, params)
        if token.user_id not in msg.reactions.get(name, []):
            raise _ApiError("no_reaction")
        self._react(msg, token.user_id, name, False)
        return {}

    def _emoji_list(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        return {"emoji": dict(self.emoji.get(token.team_id, {})), "cache_ts": f"{time.time():.6f}"}

    def _get_upload_url(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        if not filename:
            raise _ApiError("invalid_arguments")
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if length <= 0:
            raise _ApiError("invalid_arguments")
        f = FileObj(
            self._id("F"),
            token.team_id,
            token.user_id,
            filename,
            filename,
            _guess_mimetype(filename),
            None,
            length,
            int(time.time()),
        )
        self.files[f.id] = f
        ticket = secrets.token_urlsafe(16)
        self._uploads[ticket] = f.id
        return {"upload_url": f"{self.url}/upload/v1/{ticket}", "file_id": f.id}

    def _complete_upload(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        raw = params.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise _ApiError("invalid_arguments")
        files: list[FileObj] = []
        for item in items:
            f = self.files.get(str(item.get("id", "")))
            if f is None or f.team_id != token.team_id or f.data is None:
                raise _ApiError("file_not_found")
            if item.get("title"):
                f.title = str(item["title"])
            files.append(f)
        channel = params.get("channel_id") or params.get("channels")
        if channel:
            conv = self._conv_for(token, {"channel": str(channel).split(",")[0]})
            self._require_member(token, conv)
            thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
            msg = Message(
                conv.id,
                self.new_ts(),
                str(params.get("initial_comment") or ""),
                user=token.user_id,
                thread_ts=thread_ts,
                subtype="file_share",
                files=[f.id for f in files],
            )
            if thread_ts is not None:
                parent = self._find_message(conv.id, thread_ts)
                parent.thread_ts = parent.thread_ts or parent.ts
            self._store(msg)
            self._emit_message(msg)
        return {"files": [{"id": f.id, "title": f.title} for f in files]}

    def _files_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(str(params.get("file") or ""))
        if f is None or f.team_id != token.team_id or f.data is None:
            raise _ApiError("file_not_found")
        return {"file": self.file_json(f)}

    # --- uploads, downloads, images ----------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        rec = Recorded("upload", request.path, {}, self._bearer(request), time.time())
        self.requests.append(rec)
        fid = self._uploads.pop(ticket, None)
        if fid is None:
            rec.status = 404
            self._notify()
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if hasattr(part, "file") else str(part or "").encode()
        else:
            data = await request.read()
        f = self.files[fid]
        f.data = data
        f.length = len(data)
        rec.status = 200
        self._notify()
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        tf = request.match_info["tf"]
        token_value = self._bearer(request)
        rec = Recorded("download", request.path, {}, token_value, time.time())
        self.requests.append(rec)
        team_id, _, fid = tf.partition("-")
        f = self.files.get(fid)
        token = self.tokens.get(token_value or "")
        if f is None or f.data is None or f.team_id != team_id:
            rec.status = 404
            self._notify()
            return web.Response(status=404, text="Not Found")
        if token is None or token.revoked or token.team_id != team_id:
            rec.status = 302
            self._notify()
            raise web.HTTPFound(f"/signin?redir={request.path}")
        rec.status = 200
        self._notify()
        return web.Response(body=f.data, content_type=f.mimetype)

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        html = (
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _avatar(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(request.match_info["user"])
        if user is None or request.match_info["hash"] != user.avatar_hash:
            return web.Response(status=404)
        self.requests.append(Recorded("image", request.path, {}, None, time.time(), 200))
        return web.Response(body=user.avatar or _PNG, content_type="image/png")

    async def _emoji_image(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.match_info['team']}/{request.match_info['name']}"
        data = self.emoji_images.get(key)
        if data is None:
            return web.Response(status=404)
        self.requests.append(Recorded("image", request.path, {}, None, time.time(), 200))
        return web.Response(body=data, content_type="image/png")

    def _set_avatar(self, user: User, data: bytes) -> None:
        user.avatar = data
        user.avatar_hash = hashlib.sha1(data or user.id.encode()).hexdigest()[:12]

    # --- Socket Mode ---------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        rec = Recorded("socket", request.path, dict(request.query), None, time.time())
        self.requests.append(rec)
        if ticket not in self._tickets:
            rec.status = 401
            self._notify()
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        rec.status = 101
        sock = _Socket(ws, request.transport)
        sock.writer = self._spawn(sock.write())
        self._sockets.append(sock)
        sock.queue.put_nowait(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        for env in self.envelopes:
            if not env.acked:
                env.sent += 1
                sock.queue.put_nowait(env.frame())
        self._notify()
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                eid = data.get("envelope_id") if isinstance(data, dict) else None
                if eid:
                    self.acks[eid] = data.get("payload")
                    for env in self.envelopes:
                        if env.envelope_id == eid:
                            env.acked = True
                            env.ack_payload = data.get("payload")
                    self._notify()
        finally:
            if sock in self._sockets:
                self._sockets.remove(sock)
            sock.queue.put_nowait(None)
            self._notify()
        return ws

    def redeliver_unacked(self) -> int:
        """Send every unacknowledged envelope again (``retry_attempt`` + 1) on a live socket."""
        live = [s for s in self._sockets if not s.ws.closed]
        if not live:
            return 0
        n = 0
        for env in self.envelopes:
            if not env.acked:
                env.sent += 1
                live[-1].queue.put_nowait(env.frame())
                n += 1
        return n

    # --- events ----------------------------------------------------------------------------

    def event_payload(self, team_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """The outer ``event_callback`` body, as Socket Mode and the Events API carry it."""
        team = self.teams[team_id]
        return {
            "token": self.verification_token,
            "team_id": team_id,
            "context_team_id": team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": team.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + secrets.token_hex(20),
        }

    def emit_event(self, team_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Send ``event`` to the app: an envelope on Socket Mode (now if a socket is up, else on
        the next connection) and, if ``events_url`` is set, a signed HTTP push. Returns the
        outer payload (its ``event_id`` identifies it)."""
        payload = self.event_payload(team_id, event)
        if self.socket_mode:
            env = Envelope(_uuid(), payload)
            self.envelopes.append(env)
            live = [s for s in self._sockets if not s.ws.closed]
            if live:
                env.sent += 1
                live[-1].queue.put_nowait(env.frame())
            if self.ack_timeout is not None:
                self._spawn(self._resend_until_acked(env, self.ack_timeout))
        if self.events_url:
            self._spawn(self._push_and_record(self.events_url, payload))
        self._notify()
        return payload

    async def _resend_until_acked(self, env: Envelope, timeout: float) -> None:
        for _ in range(3):
            await asyncio.sleep(timeout)
            if env.acked:
                return
            live = [s for s in self._sockets if not s.ws.closed]
            if live:
                env.sent += 1
                live[-1].queue.put_nowait(env.frame())
                self._notify()

    async def _push_and_record(self, url: str, payload: dict[str, Any]) -> None:
        """Push, and retry a failure (not 2xx, or no answer in 3 s) after each of
        ``push_retry_delays``; every attempt lands in ``pushes``."""
        delays = list(self.push_retry_delays)
        attempt = 0
        while True:
            try:
                result = await self.push_event(
                    url,
                    payload,
                    retry_num=attempt or None,
                    retry_reason="http_error" if attempt else "http_timeout",
                )
            except (aiohttp.ClientError, TimeoutError) as e:
                result = PushResult(0, repr(e), {})
            self.pushes.append((payload, result))
            self._notify()
            if 200 <= result.status < 300 or not delays:
                return
            await asyncio.sleep(delays.pop(0))
            attempt += 1

    def envelope_for(self, payload: dict[str, Any]) -> Envelope:
        for env in self.envelopes:
            if env.payload is payload or env.payload["event_id"] == payload["event_id"]:
                return env
        raise KeyError(payload["event_id"])

    def _sees(self, conv: Conversation) -> bool:
        return self.teams[conv.team_id].bot_user_id in conv.members

    def _channel_type(self, conv: Conversation) -> str:
        return {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}[conv.kind]

    def _store(self, msg: Message) -> None:
        msgs = self.messages.setdefault(msg.channel, [])
        msgs.append(msg)
        msgs.sort(key=lambda m: _ts_key(m.ts))

    def _emit_message(self, msg: Message) -> dict[str, Any] | None:
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        event = self.message_json(msg, with_channel=True)
        event["event_ts"] = msg.ts
        event["channel_type"] = self._channel_type(conv)
        if msg.reply_broadcast and msg.thread_ts:
            parent = self._maybe_message(msg.channel, msg.thread_ts)
            if parent is not None:
                event["root"] = self.message_json(parent)
        return self.emit_event(conv.team_id, event)

    def _edit(self, msg: Message, text: str, editor: str) -> dict[str, Any] | None:
        previous = self.message_json(msg)
        msg.text = text
        event_ts = self.new_ts()
        msg.edited = {"user": editor, "ts": event_ts}
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        return self.emit_event(
            conv.team_id,
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "channel": msg.channel,
                "channel_type": self._channel_type(conv),
                "ts": event_ts,
                "event_ts": event_ts,
                "message": self.message_json(msg),
                "previous_message": previous,
            },
        )

    def _delete(self, msg: Message) -> dict[str, Any] | None:
        previous = self.message_json(msg)
        self.messages[msg.channel].remove(msg)
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        event_ts = self.new_ts()
        return self.emit_event(
            conv.team_id,
            {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": msg.channel,
                "channel_type": self._channel_type(conv),
                "ts": event_ts,
                "deleted_ts": msg.ts,
                "event_ts": event_ts,
                "previous_message": previous,
            },
        )

    def _react(self, msg: Message, user: str, name: str, add: bool) -> dict[str, Any] | None:
        users = msg.reactions.setdefault(name, [])
        if add:
            users.append(user)
        else:
            users.remove(user)
            if not users:
                del msg.reactions[name]
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        event: dict[str, Any] = {
            "type": "reaction_added" if add else "reaction_removed",
            "user": user,
            "reaction": name,
            "item": {"type": "message", "channel": msg.channel, "ts": msg.ts},
            "event_ts": self.new_ts(),
        }
        if msg.user:
            event["item_user"] = msg.user
        return self.emit_event(conv.team_id, event)

    # --- what tests do as Slack users ------------------------------------------------------

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        files: list[FileObj] | None = None,
    ) -> Message:
        """``user`` posts in ``channel`` (in the thread of ``thread_ts``; also to the channel
        with ``reply_broadcast``; with ``files`` as one ``file_share`` message). Stored, and
        the ``message`` event goes out."""
        conv = self.conversations[channel]
        if user not in conv.members:
            raise ValueError(f"{user} is not a member of {channel}")
        msg = Message(channel, self.new_ts(), text, user=user)
        msg.extra["client_msg_id"] = _uuid()
        if thread_ts is not None:
            parent = self._maybe_message(channel, thread_ts)
            if parent is None:
                raise ValueError(f"no message {thread_ts} in {channel}")
            root = parent.thread_ts or parent.ts
            parent.thread_ts = root
            msg.thread_ts = root
            if reply_broadcast:
                msg.reply_broadcast = True
                msg.subtype = "thread_broadcast"
        if files:
            msg.files = [f.id for f in files]
            msg.subtype = msg.subtype or "file_share"
        self._store(msg)
        self._emit_message(msg)
        return msg

    def edit_message(self, channel: str, ts: str, text: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._edit(msg, text, msg.user or "")

    def delete_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._delete(msg)

    def add_reaction(self, channel: str, ts: str, user: str, name: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._react(msg, user, name, True)

    def remove_reaction(self, channel: str, ts: str, user: str, name: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._react(msg, user, name, False)

    def update_user(
        self,
        user_id: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        avatar: bytes | None = None,
    ) -> dict[str, Any]:
        """Change a profile (a new avatar gets new image URLs) and emit ``user_change``."""
        user = self.users[user_id]
        if real_name is not None:
            user.real_name = real_name
        if display_name is not None:
            user.display_name = display_name
        if avatar is not None:
            self._set_avatar(user, avatar)
        user.updated = int(time.time())
        event = {
            "type": "user_change",
            "user": self.user_json(user),
            "cache_ts": user.updated,
            "event_ts": self.new_ts(),
        }
        return self.emit_event(user.team_id, event)

    def join(self, channel: str, user: str, inviter: str | None = None) -> dict[str, Any] | None:
        """``user`` joins: ``member_joined_channel`` and the ``channel_join`` message."""
        conv = self.conversations[channel]
        if user in conv.members:
            return None
        conv.members.append(user)
        event: dict[str, Any] = {
            "type": "member_joined_channel",
            "user": user,
            "channel": channel,
            "channel_type": "C" if conv.kind == "public" else "G",
            "team": conv.team_id,
            "event_ts": self.new_ts(),
        }
        if inviter:
            event["inviter"] = inviter
        payload = self.emit_event(conv.team_id, event) if self._sees(conv) else None
        msg = Message(channel, self.new_ts(), f"<@{user}> has joined the channel", user=user)
        msg.subtype = "channel_join"
        self._store(msg)
        self._emit_message(msg)
        return payload

    def leave(self, channel: str, user: str) -> dict[str, Any] | None:
        """``user`` leaves: ``member_left_channel`` (nothing if the bot no longer sees it)."""
        conv = self.conversations[channel]
        if user not in conv.members:
            return None
        seen = self._sees(conv)
        conv.members.remove(user)
        event = {
            "type": "member_left_channel",
            "user": user,
            "channel": channel,
            "channel_type": "C" if conv.kind == "public" else "G",
            "team": conv.team_id,
            "event_ts": self.new_ts(),
        }
        return self.emit_event(conv.team_id, event) if seen else None

    def rename(self, channel: str, name: str) -> dict[str, Any] | None:
        """``channel_rename`` (``group_rename`` for a private channel)."""
        conv = self.conversations[channel]
        conv.name = name
        if not self._sees(conv):
            return None
        event = {
            "type": "channel_rename" if conv.kind == "public" else "group_rename",
            "channel": {
                "id": conv.id,
                "name": name,
                "name_normalized": name,
                "created": conv.created,
                "is_channel": conv.kind == "public",
                "is_mpim": conv.kind == "mpim",
            },
            "event_ts": self.new_ts(),
        }
        return self.emit_event(conv.team_id, event)

    def set_topic(self, channel: str, user: str, topic: str) -> Message:
        """The ``channel_topic`` message Slack posts when ``user`` sets the topic."""
        conv = self.conversations[channel]
        conv.topic = topic
        msg = Message(channel, self.new_ts(), f"set the channel topic: {topic}", user=user)
        msg.subtype = "channel_topic"
        msg.extra["topic"] = topic
        self._store(msg)
        self._emit_message(msg)
        return msg

    def set_purpose(self, channel: str, user: str, purpose: str) -> Message:
        conv = self.conversations[channel]
        conv.purpose = purpose
        msg = Message(channel, self.new_ts(), f"set the channel description: {purpose}", user=user)
        msg.subtype = "channel_purpose"
        msg.extra["purpose"] = purpose
        self._store(msg)
        self._emit_message(msg)
        return msg

    # --- the Events API over HTTP --------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int, secret: str | None = None) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        key = (secret or self.signing_secret).encode()
        return "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest()

    async def push_event(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timeout: float = 3.0,
    ) -> PushResult:
        """POST ``payload`` to ``url`` as Slack does: JSON body, ``X-Slack-Request-Timestamp``
        and ``X-Slack-Signature`` (override ``timestamp``, ``secret`` or ``signature`` to send a
        stale or badly signed one), ``X-Slack-Retry-Num`` / ``-Reason`` on a retry."""
        assert self._session is not None, "start() the fake first"
        body = json.dumps(payload).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or self.sign(body, ts, secret),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        async with self._session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            return PushResult(resp.status, await resp.text(), dict(resp.headers))

    async def push_stale(self, url: str, payload: dict[str, Any], age: int = 600) -> PushResult:
        """A correctly signed push whose timestamp is ``age`` seconds old (a replay)."""
        return await self.push_event(url, payload, timestamp=int(time.time()) - age)

    async def push_badly_signed(self, url: str, payload: dict[str, Any]) -> PushResult:
        """A push signed with the wrong secret."""
        return await self.push_event(url, payload, secret="not-the-" + self.signing_secret)

    async def verify_url(self, url: str) -> tuple[bool, PushResult]:
        """Slack's ``url_verification``: the endpoint must answer with the challenge (as plain
        text, or JSON ``{"challenge": ...}``)."""
        challenge = secrets.token_urlsafe(24)
        payload = {
            "token": self.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        result = await self.push_event(url, payload)
        ok = result.status == 200 and (
            result.body.strip() == challenge or _json_field(result.body, "challenge") == challenge
        )
        return ok, result


def _json_field(text: str, key: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


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
