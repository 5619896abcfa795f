"""``FakeSlack``: the aiohttp app (state, routes, the Web API method table), its lifecycle,
injected faults, request recording and waiting, and the Web API dispatch (token checks,
faults, answers). The handlers live in the mixins it is built from."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from bridgekit.contract.http_listener import start_listener, stop_listener
from bridgekit.testing.ports import free_port

from .actions import UserActions
from .conversation_admin import ConversationAdmin
from .events import EventEmitter
from .events_api import EventsApiPusher
from .files import FileEndpoints
from .models import (
    Conversation,
    Envelope,
    FileObj,
    Message,
    PushResult,
    Recorded,
    SlackApiFault,
    Team,
    Token,
    User,
    _ApiError,
)
from .rendering import ApiObjects
from .socket_mode import SocketMode, _Socket
from .web_api import WebApiMethods
from .workspace import WorkspaceSetup


class FakeSlack(
    WorkspaceSetup,
    ApiObjects,
    WebApiMethods,
    ConversationAdmin,
    FileEndpoints,
    SocketMode,
    EventEmitter,
    EventsApiPusher,
    UserActions,
):
    """See the package docstring. Use as ``async with FakeSlack() as fake:``."""

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
        self.read_marks: dict[tuple[str, str], str] = {}  # (user, channel) -> ts read up to
        self.emoji: dict[str, dict[str, str]] = {}  # team -> name -> url or "alias:x"
        self.emoji_images: dict[str, bytes] = {}
        self.tokens: dict[str, Token] = {}
        # event_context -> every party the event was visible to (apps.event.authorizations.list)
        self.event_authorizations: dict[str, list[dict[str, Any]]] = {}
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
        self.refused_sockets = 0  # websocket handshakes still to refuse (refuse_sockets)
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
        self.app.router.add_get("/team-icons/{team}/{hash}_{size}.png", self._team_icon)
        self._methods: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
            "api.test": (self._api_test, ()),
            "auth.test": (self._auth_test, ("bot", "user")),
            "auth.revoke": (self._auth_revoke, ("bot", "user")),
            "apps.connections.open": (self._connections_open, ("app",)),
            "team.info": (self._team_info, ("bot", "user")),
            "users.info": (self._users_info, ("bot", "user")),
            "users.list": (self._users_list, ("bot", "user")),
            "users.lookupByEmail": (self._users_lookup_by_email, ("bot", "user")),
            "apps.event.authorizations.list": (self._event_authorizations, ("app",)),
            "conversations.info": (self._conv_info, ("bot", "user")),
            "conversations.list": (self._conv_list, ("bot", "user")),
            "conversations.members": (self._conv_members, ("bot", "user")),
            "conversations.history": (self._conv_history, ("bot", "user")),
            "conversations.replies": (self._conv_replies, ("bot", "user")),
            "conversations.open": (self._conv_open, ("bot", "user")),
            "conversations.rename": (self._conv_rename, ("bot", "user")),
            "conversations.setTopic": (self._conv_set_topic, ("bot", "user")),
            "conversations.setPurpose": (self._conv_set_purpose, ("bot", "user")),
            "conversations.mark": (self._conv_mark, ("bot", "user")),
            "chat.postMessage": (self._post_message, ("bot", "user")),
            "chat.meMessage": (self._me_message, ("bot", "user")),
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
        self._runner = await start_listener(self.app, self.host, self.port, grace=1)
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
            await stop_listener(self._runner)

    async def __aenter__(self) -> FakeSlack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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

    def hold(self, method: str) -> asyncio.Event:
        """The next call of ``method`` is answered once the returned event is set (Slack
        unreachable for exactly as long as a test needs, however loaded the machine)."""
        release = asyncio.Event()
        self._faults.setdefault(method, deque()).append(SlackApiFault("hold", release=release))
        return release

    def answer_late(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect at once (their events go out)
        but are answered late, as when Slack's answer is slow on its way back: the caller
        hears of its own change from the event first. The answer waits until the app
        acknowledged the call's Socket Mode envelopes (so the bridge has taken the event in,
        however loaded the machine), ``seconds`` at most; without envelopes, ``seconds``."""
        self._faults.setdefault(method, deque()).append(
            SlackApiFault("late", seconds=seconds, times=times)
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
        if request.transport is not None:
            rec.peer = request.transport.get_extra_info("peername")
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
        late = 0.0
        while faults:
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.popleft()
            if fault.kind == "late":
                late += fault.seconds
                continue
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
                continue
            if fault.kind == "hold" and fault.release is not None:
                await fault.release.wait()
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
        emitted = len(self.envelopes)
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
        finally:
            if late:
                await self._after_acks(self.envelopes[emitted:], late)
        return 200, {"ok": True, **result}, {}

    async def _after_acks(self, envelopes: list[Any], seconds: float) -> None:
        """Returns once every one of ``envelopes`` is acknowledged, or after ``seconds``."""
        if not envelopes:
            await asyncio.sleep(seconds)
            return
        try:
            await self.wait_until(lambda: all(e.acked for e in envelopes), seconds)
        except TimeoutError:
            pass
