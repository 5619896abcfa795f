"""``FakeDiscord``: the aiohttp app (state, the REST route table, the gateway and cdn routes),
its lifecycle, pointing discord.py at it, request recording, auth, injected REST faults and
the JSON answers (``Content-Type: application/json`` exactly, as discord.py requires)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bridgekit.contract.http_listener import start_listener, stop_listener
from bridgekit.testing.ports import free_port

from .actions import RemoteActions
from .cdn import Cdn
from .gateway import Gateway, Session
from .messages import MessageRoutes
from .models import ApiError, Channel, Fault, Guild, Message, Recorded, Snowflakes, User, Webhook
from .rendering import ApiObjects
from .rest import RestRoutes
from .threads import ThreadActions
from .webhooks import WebhookRoutes
from .workspace import WorldSetup, cid

API_PREFIX = "/api/v10"


def _pattern(path_pattern: str) -> str:
    """Fault patterns are paths after the API prefix; a full one is accepted too."""
    return path_pattern.removeprefix(API_PREFIX)


@dataclass
class Call:
    """What a REST handler gets: the request, the route's parameters, the caller (None for
    webhook-token routes), the JSON body (``payload_json`` for multipart) and uploaded files."""

    request: web.Request
    params: dict[str, str]
    user: User | None
    body: Any
    files: list[tuple[str, bytes, str]]

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def me(self) -> User:
        assert self.user is not None
        return self.user


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class FakeDiscord(
    WorldSetup,
    ApiObjects,
    Gateway,
    RestRoutes,
    MessageRoutes,
    WebhookRoutes,
    Cdn,
    RemoteActions,
    ThreadActions,
):
    """See the package docstring. Use as ``async with FakeDiscord() as fake:``."""

    def __init__(self, *, host: str = "127.0.0.1", heartbeat_interval_ms: int = 5000) -> None:
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.api_url = self.url + API_PREFIX
        self.gateway_url = f"ws://{host}:{self.port}/gateway"
        self.cdn_host = f"{host}:{self.port}"
        self.cdn_url = self.url  # attachments at {cdn_url}/attachments/..., avatars at /avatars/...
        self.media_url = self.url
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ids = Snowflakes()
        self.users: dict[str, User] = {}
        self.tokens: dict[str, str] = {}  # token -> user id
        self.refused_tokens: set[str] = set()
        self.guilds: dict[str, Guild] = {}
        self.channels: dict[str, Channel] = {}
        self.message_store: dict[str, list[Message]] = {}  # channel id -> messages, oldest first
        self.deleted: list[Message] = []
        self.webhooks: dict[str, Webhook] = {}
        self.images: dict[str, bytes] = {}  # avatar / icon hash -> image bytes
        self.sticker_images: dict[str, bytes] = {}  # sticker id -> image bytes
        self.requests: list[Recorded] = []
        self.cdn_requests: list[str] = []
        self.sessions: list[Session] = []
        self.dispatched: list[tuple[str, str, Any]] = []  # (session id, t, d) in order
        self.lost_dispatches: list[str] = []  # types dropped while gateway_paused
        self.gateway_connects: list[dict[str, str]] = []  # query of each websocket handshake
        self.gateway_frames: list[dict[str, Any]] = []  # what clients sent (tokens left out)
        self.identify_count = 0
        self.resume_count = 0
        self.withhold_heartbeat_ack = False
        self.echo_before_reply = False
        self.echo_delay = 0.0  # MESSAGE_CREATE of a send dispatched this late (see publish_create)
        self.gateway_paused = False  # dispatches are dropped (reach no session, nor RESUME)
        self.member_limit = 100  # members listed in GUILD_CREATE
        self.large_threshold = 250
        self._storm: int | None = None
        self._outage = False
        self._faults: list[Fault] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._server_closes: dict[int, int] = {}  # id(socket) -> the code the fake closed it with
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        self.app.router.add_route("*", "/api/v9/{tail:.*}", self._api)
        self.app.router.add_get("/gateway", self._gateway)
        self.app.router.add_get("/gateway/", self._gateway)
        self.app.router.add_get("/attachments/{channel}/{att}/{name}", self._attachment)
        self.app.router.add_get("/avatars/{user}/{file}", self._image)
        self.app.router.add_get("/icons/{guild}/{file}", self._image)
        self.app.router.add_get("/emojis/{file}", self._image)  # custom emoji: add_image(id)
        self.app.router.add_get("/guilds/{guild}/users/{user}/avatars/{file}", self._image)
        self.app.router.add_get("/stickers/{file}", self._sticker)
        self.routes: list[tuple[str, re.Pattern[str], str, Callable[[Call], Any], bool]] = []
        self._add_rest_routes()
        self._add_message_routes()
        self._add_webhook_routes()

    def route(
        self, method: str, template: str, handler: Callable[[Call], Any], *, auth: bool = True
    ) -> None:
        """``template`` like ``/channels/{channel_id}/messages``."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append((method, re.compile(f"^{regex}$"), template, handler, auth))

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        self._runner = await start_listener(self.app, self.host, self.port, grace=1)
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await stop_listener(self._runner)

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @contextlib.contextmanager
    def point_discord_py(self) -> Iterator[FakeDiscord]:
        """Points discord.py (REST, webhooks, gateway, assets) at this fake; restores after.
        Process-wide: one fake at a time."""
        import discord.asset
        import discord.gateway
        import discord.http
        import discord.webhook.async_
        import yarl

        route_cls = discord.http.Route
        hook_route = discord.webhook.async_.Route
        saved = (
            route_cls.BASE,
            hook_route.BASE,
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
            discord.asset.Asset.BASE,
        )
        route_cls.BASE = self.api_url
        hook_route.BASE = self.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        discord.asset.Asset.BASE = self.cdn_url
        try:
            yield self
        finally:
            route_cls.BASE, hook_route.BASE = saved[0], saved[1]
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved[2]
            discord.asset.Asset.BASE = saved[3]

    # --- faults ------------------------------------------------------------------------------

    def rate_limit(
        self,
        method: str,
        path_pattern: str,
        retry_after: float = 1.0,
        times: int = 1,
        global_: bool = False,
    ) -> None:
        """The next ``times`` requests ``method`` (or ``*``) on a path matching the glob
        ``path_pattern`` (after ``/api/v10``, e.g. ``/channels/*/messages``) get a 429."""
        self._faults.append(
            Fault(
                method.upper(),
                _pattern(path_pattern),
                "ratelimit",
                times=times,
                retry_after=retry_after,
                global_=global_,
            )
        )

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int = 500,
        *,
        code: int = 0,
        message: str = "",
        times: int = 1,
    ) -> None:
        """The next ``times`` matching requests answer ``status`` with a Discord error body."""
        self._faults.append(
            Fault(
                method.upper(),
                _pattern(path_pattern),
                "error",
                times=times,
                status=status,
                code=code,
                message=message or f"{status}: fake failure",
            )
        )

    def hold(self, method: str, path_pattern: str) -> asyncio.Event:
        """The next matching request is answered once the returned event is set."""
        release = asyncio.Event()
        self._faults.append(Fault(method.upper(), _pattern(path_pattern), "hold", release=release))
        return release

    def clear_faults(self) -> None:
        self._faults.clear()

    def refuse_token(self, token: str, *, close: bool = True) -> None:
        """Later REST calls with ``token`` get 401, IDENTIFY/RESUME with it closes 4004, and
        (``close``) its live sessions are closed with 4004 now, as when a token is reset."""
        self.refused_tokens.add(token)
        for session in self.sessions:
            if session.token == token:
                session.resumable = False
                if close and session.queue is not None:
                    session.queue.put_nowait(("close", 4004, "Authentication failed."))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.method in ("*", method) and fnmatch.fnmatchcase(path, fault.pattern):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- recording and waiting ---------------------------------------------------------------

    def requests_to(self, method: str, path_pattern: str) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.method == method.upper() and fnmatch.fnmatchcase(r.path, _pattern(path_pattern))
        ]

    def messages(self, channel: Any) -> list[dict[str, Any]]:
        """The channel's (or thread's) messages as the API shows them, oldest first."""
        return [self.message_json(m) for m in self.message_store.get(cid(channel), [])]

    def find_message(self, message_id: Any) -> Message | None:
        mid = str(message_id)
        for messages in self.message_store.values():
            for msg in messages:
                if msg.id == mid:
                    return msg
        return None

    def user_by_name(self, name: str) -> User:
        return next(u for u in self.users.values() if u.username == name)

    # --- the REST dispatch -------------------------------------------------------------------

    def _user_for_token(self, token: str) -> User | None:
        if not token or token in self.refused_tokens:
            return None
        uid = self.tokens.get(token)
        return self.users.get(uid) if uid else None

    def _auth(self, header: str) -> User | None:
        if header.startswith("Bot "):
            user = self._user_for_token(header[4:])
            return user if user is not None and user.bot else None
        user = self._user_for_token(header)
        return user if user is not None and not user.bot else None

    async def _read_body(self, request: web.Request) -> tuple[Any, list[tuple[str, bytes, str]]]:
        ctype = request.headers.get("Content-Type", "")
        files: list[tuple[str, bytes, str]] = []
        if ctype.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.name and part.name.startswith("files["):
                    data = await part.read(decode=False)
                    files.append(
                        (
                            part.filename or "unknown",
                            bytes(data),
                            part.headers.get("Content-Type", "application/octet-stream"),
                        )
                    )
            return body, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError as exc:
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        headers = dict(request.headers)
        rec = Recorded(
            method=method, path=path, query=dict(request.query), json=None, headers=headers
        )
        self.requests.append(rec)
        try:
            rec.json, rec.files = await self._read_body(request)
        except ApiError as exc:
            rec.status = exc.status
            return json_response({"message": exc.message, "code": exc.code}, exc.status)
        for rmethod, regex, template, handler, auth in self.routes:
            match = regex.match(path)
            if match is None or rmethod != method:
                continue
            bucket = hashlib.sha1(f"{method} {template}".encode()).hexdigest()[:16]
            fault = self._take_fault(method, path)
            if fault is not None and fault.kind == "hold":
                assert fault.release is not None
                await fault.release.wait()
                fault = None
            if fault is not None:
                resp = self._fault_response(fault, bucket)
                rec.status = resp.status
                return resp
            user: User | None = None
            if auth:
                user = self._auth(headers.get("Authorization", ""))
                if user is None:
                    rec.status = 401
                    return json_response({"message": "401: Unauthorized", "code": 0}, 401)
            call = Call(
                request=request, params=match.groupdict(), user=user, body=rec.json, files=rec.files
            )
            try:
                result = await handler(call)
            except ApiError as exc:
                body: dict[str, Any] = {"message": exc.message, "code": exc.code}
                if exc.errors is not None:
                    body["errors"] = exc.errors
                rec.status = exc.status
                return json_response(body, exc.status)
            limits = {
                "X-RateLimit-Limit": "50",
                "X-RateLimit-Remaining": "49",
                "X-RateLimit-Reset": f"{time.time() + 60:.3f}",
                "X-RateLimit-Reset-After": "60.000",
                "X-RateLimit-Bucket": bucket,
            }
            if result is None:
                rec.status = 204
                return web.Response(status=204, headers=limits)
            rec.status = 200
            return json_response(result, 200, limits)
        if any(regex.match(path) for _, regex, _, _, _ in self.routes):
            rec.status = 405
            return json_response({"message": "405: Method Not Allowed", "code": 0}, 405)
        rec.status = 404
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    def _fault_response(self, fault: Fault, bucket: str) -> web.Response:
        if fault.kind == "ratelimit":
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, int(fault.retry_after + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                "X-RateLimit-Bucket": bucket,
                "X-RateLimit-Scope": "global" if fault.global_ else "user",
            }
            if fault.global_:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": fault.global_,
            }
            return json_response(body, 429, headers)
        return json_response({"message": fault.message, "code": fault.code}, fault.status)
