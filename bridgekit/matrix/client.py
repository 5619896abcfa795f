"""The Matrix side: mautrix intents for the bot, ghosts and double puppets, plus retries.

mautrix does the protocol plumbing. What bridgekit adds is the retry policy that makes the
outbox lossless: 429s wait for the server's ``retry_after_ms``, 5xx and connection failures back
off exponentially (capped), and only errors that can never succeed are raised to the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
from mautrix.appservice import AppServiceAPI, IntentAPI
from mautrix.appservice.state_store import ASStateStore
from mautrix.client.state_store.memory import MemoryStateStore as _ClientMemoryStore
from mautrix.errors import MatrixConnectionError, MatrixRequestError, make_request_error
from mautrix.types import EventType, UserID
from yarl import URL

log = logging.getLogger("bridgekit.matrix.client")
T = TypeVar("T")
#: Ghost intents kept by :meth:`MatrixClient.intent` (least recently used ones go first).
INTENT_CACHE_SIZE = 10_000
#: Seconds between tries while the homeserver refuses the bridge's as_token (not registered).
UNREGISTERED_RETRY = 30.0

#: Set by :class:`_RetryAwareResponse` when the homeserver answers 429 with retry_after_ms.
_retry_after_ms: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "retry_after_ms", default=None
)


class _RetryAwareResponse(aiohttp.ClientResponse):
    """Remembers ``retry_after_ms`` of 429 answers, which mautrix's errors do not carry."""

    async def json(self, *args: Any, **kwargs: Any) -> Any:
        data = await super().json(*args, **kwargs)
        if self.status == 429 and isinstance(data, dict):
            value = data.get("retry_after_ms")
            _retry_after_ms.set(int(value) if isinstance(value, int | float) else None)
        return data


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request may succeed if simply tried again later."""
    if isinstance(exc, MatrixConnectionError | aiohttp.ClientError | asyncio.TimeoutError):
        return True
    if isinstance(exc, ConnectionError | OSError):
        return True
    if isinstance(exc, MatrixRequestError):
        return exc.http_status == 429 or exc.http_status >= 500 or exc.http_status == 0
    return False


class Backoff:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s ... capped at ``cap``."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return delay / 2 + random.random() * delay / 2

    def reset(self) -> None:
        self.attempt = 0


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_attempts: int | None = None,
    cap: float = 30.0,
    on_retry: Callable[[BaseException, float], bool] | None = None,
) -> T:
    """Run ``fn`` until it succeeds or fails permanently. ``max_attempts=None`` = forever.

    ``on_retry`` returns True when it has told the admin about the failure itself: the retry
    is then logged at DEBUG only, not as a warning every few seconds.
    """
    backoff = Backoff(cap=cap)
    attempt = 0
    while True:
        attempt += 1
        _retry_after_ms.set(None)
        try:
            return await fn()
        except Exception as e:
            if not is_transient(e) or (max_attempts is not None and attempt >= max_attempts):
                raise
            delay = backoff.next_delay()
            hinted = _retry_after_ms.get()
            if isinstance(e, MatrixRequestError) and e.http_status == 429 and hinted:
                delay = hinted / 1000
            told = on_retry(e, delay) if on_retry else False
            log.log(
                logging.DEBUG if told else logging.WARNING,
                "%s failed (%s), retry %d in %.1fs",
                what,
                _describe(e),
                attempt,
                delay,
            )
            await asyncio.sleep(delay)


def _describe(e: BaseException) -> str:
    if isinstance(e, MatrixRequestError):
        return f"HTTP {e.http_status} {getattr(e, 'errcode', '')} {e.message or ''}".strip()
    return f"{type(e).__name__}: {e}"


class MemoryStateStore(_ClientMemoryStore, ASStateStore):
    """Room state and registration cache, in memory (rebuilt from transactions)."""

    def __init__(self) -> None:
        _ClientMemoryStore.__init__(self)
        ASStateStore.__init__(self)


class Encryptor(Protocol):
    """What sending needs from end-to-bridge encryption (bridgekit/crypto/service.py)."""

    async def outgoing(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]: ...

    def new_room_state(self) -> list[dict[str, Any]]: ...

    async def set_encryption(self, room_id: str, content: dict[str, Any] | None) -> None: ...

    async def encryption_of(self, room_id: str) -> dict[str, Any] | None: ...


class MatrixClient:
    """Owns the HTTP session and hands out intents."""

    #: End-to-bridge encryption, when ``encryption.allow`` is on: every message event the
    #: bridge sends to a room goes through :meth:`prepare_event`.
    encryptor: Encryptor | None = None

    def __init__(
        self,
        homeserver: str,
        domain: str,
        bot_mxid: str,
        as_token: str,
        bridge_id: str,
    ) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.domain = domain
        self.bot_mxid = bot_mxid
        self.as_token = as_token
        self.bridge_id = bridge_id
        self.state_store = MemoryStateStore()
        self.session: aiohttp.ClientSession | None = None
        self.api: AppServiceAPI | None = None
        self.bot: IntentAPI | None = None
        # mautrix builds a new IntentAPI (wrapping ~60 methods, ~65 us) on every ``user()``
        # call, and every remote event asks for its ghost's: keep the recent ones.
        self._intents: OrderedDict[str, IntentAPI] = OrderedDict()

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            response_class=_RetryAwareResponse,
            timeout=aiohttp.ClientTimeout(total=120, connect=10),
            connector=aiohttp.TCPConnector(limit=100),
        )
        self.api = AppServiceAPI(
            base_url=self.homeserver,
            bot_mxid=UserID(self.bot_mxid),
            token=self.as_token,
            log=logging.getLogger("bridgekit.matrix.client.api"),
            state_store=self.state_store,
            client_session=self.session,
            bridge_name=self.bridge_id,
            default_retry_count=0,
        )
        self.bot = IntentAPI(UserID(self.bot_mxid), self.api, state_store=self.state_store)

    async def stop(self) -> None:
        if self.session:
            await self.session.close()

    async def register_bot(self) -> None:
        """Register the bot user, however long the homeserver takes to accept the bridge.

        The two usual first-run mistakes are said plainly, once each, instead of as a stack
        trace: a homeserver that cannot be reached (``homeserver.address``), and one that does
        not know the bridge's ``as_token`` (the registration file is not loaded, or is from an
        older ``generate-registration``). The latter is tried again every
        :data:`UNREGISTERED_RETRY` seconds, so the bridge comes up by itself once the admin
        adds the registration and restarts the homeserver.
        """
        assert self.bot is not None
        told: set[str] = set()

        def on_retry(e: BaseException, delay: float) -> bool:
            if isinstance(e, MatrixRequestError):
                return False  # it answers, with an error: each retry is worth a warning
            if "unreachable" not in told:
                told.add("unreachable")
                log.error(
                    "Cannot reach the homeserver at %s (homeserver.address in the config); "
                    "retrying until it answers",
                    self.homeserver,
                )
            return True

        while True:
            try:
                await with_retries(
                    self.bot.ensure_registered,
                    what="registering the bot",
                    cap=10,
                    on_retry=on_retry,
                )
                return
            except MatrixRequestError as e:
                if e.http_status != 401:
                    raise
                if "token" not in told:
                    told.add("token")
                    log.error(
                        "The homeserver at %s does not accept this bridge's as_token (%s). Add "
                        "the registration file (bridgekit generate-registration) to its "
                        "app_service_config_files and restart it; the same as_token must be in "
                        "both files. Trying again every %.0f s.",
                        self.homeserver,
                        _describe(e),
                        UNREGISTERED_RETRY,
                    )
                await asyncio.sleep(UNREGISTERED_RETRY)

    async def prepare_event(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The event type and content to send: encrypted in an encrypted room."""
        if self.encryptor is None:
            return event_type, content
        return await self.encryptor.outgoing(room_id, event_type, content)

    def intent(self, mxid: str) -> IntentAPI:
        assert self.bot is not None
        if mxid == self.bot_mxid:
            return self.bot
        intent = self._intents.get(mxid)
        if intent is None:
            intent = self._intents[mxid] = self.bot.user(UserID(mxid))
            if len(self._intents) > INTENT_CACHE_SIZE:
                self._intents.popitem(last=False)
        else:
            self._intents.move_to_end(mxid)
        return intent

    def real_user_intent(self, mxid: str, token: str) -> IntentAPI:
        """An intent acting as a real user: ``as_token:<t>`` secrets or a personal token."""
        assert self.bot is not None
        if token.startswith("as_token:"):
            return self.bot.user(UserID(mxid), token[len("as_token:") :], as_token=True)
        return self.bot.user(UserID(mxid), token)


async def send_event(
    intent: IntentAPI,
    room_id: str,
    event_type: str,
    content: dict[str, Any],
    txn_id: str,
    timestamp_ms: int | None = None,
) -> str:
    """``PUT /rooms/{room}/send/{type}/{txn}`` as ``intent``: the request of every bridged
    message, so it is made directly on the shared aiohttp session. mautrix's generic request
    path formats two log lines, updates its metrics and rebuilds the URL for each request:
    about a third of the request's Python time in a profile of lone messages. The sender is
    still joined first (from the state store); mautrix's power-level pre-check is left to the
    homeserver, whose 403 is raised as mautrix's error like any other; 429 hints reach
    :func:`with_retries`. Double puppets take mautrix's path (it marks their events)."""
    api = intent.api
    if api.is_real_user or api.session is None:
        etype = message_type(event_type)
        return str(
            await intent.send_message_event(
                room_id,
                etype,
                content,
                txn_id=txn_id,
                **({"timestamp": timestamp_ms} if timestamp_ms else {}),
            )
        )
    await intent.ensure_joined(room_id)
    query = f"?user_id={quote(intent.mxid, safe='')}"
    if timestamp_ms:
        query += f"&ts={timestamp_ms}"
    url = URL(
        f"{api.base_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/"
        f"{quote(event_type, safe='')}/{quote(txn_id, safe='')}{query}",
        encoded=True,
    )
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
    body = json.dumps(content).encode()
    try:
        async with api.session.put(url, data=body, headers=headers) as resp:
            raw = await resp.read()
            status = resp.status
    except aiohttp.ClientError as e:
        raise MatrixConnectionError(str(e)) from e
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if 200 <= status < 300 and isinstance(data, dict) and "event_id" in data:
        return str(data["event_id"])
    errcode = message = unstable = None
    if isinstance(data, dict):
        errcode, message = data.get("errcode"), data.get("error")
        unstable = data.get("org.matrix.msc3848.unstable.errcode")
        retry = data.get("retry_after_ms")
        if status == 429 and isinstance(retry, int | float):
            _retry_after_ms.set(int(retry))
    raise make_request_error(
        http_status=status,
        text=raw.decode("utf-8", "replace"),
        errcode=errcode,
        message=message,
        unstable_errcode=unstable,
    )


def message_type(name: str) -> EventType:
    return EventType.find(name, t_class=EventType.Class.MESSAGE)


def state_type(name: str) -> EventType:
    return EventType.find(name, t_class=EventType.Class.STATE)
