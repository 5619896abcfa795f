"""The Application Service API HTTP surface (what the homeserver calls).

A transaction is answered 200 only after its body is committed to the database (the durable
inbox); a retry (same txnId, same events: see :func:`events_digest`) is recognised from the
database, so even one that arrives after a restart is not processed twice, while a txnId the
homeserver reuses for new events is processed. Every request is authenticated with the
hs_token compared in constant time; the token never appears in logs. Bad requests get the
spec's error codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ..contract.http_listener import start_listener, stop_listener

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; json alone gives the same answers
    orjson = None  # type: ignore[assignment]

log = logging.getLogger("bridgekit.matrix.appservice")

PREFIX = "/_matrix/app/v1"
#: Seconds between two warnings about refused requests (unauthenticated, or JSON too deep).
REFUSED_LOG_INTERVAL = 60.0

#: A transaction as the bridge knows it: the homeserver's id and :func:`events_digest`.
TxnKey = tuple[str, str]


def events_digest(data: dict[str, Any]) -> str:
    """A digest of a transaction's timeline event ids ('' when it has none).

    Transaction ids are unique only within one run of the homeserver (Synapse on SQLite numbers
    them again from the highest pending one after a restart), while a retry carries the same
    timeline events (Synapse resends a failed transaction's events by id) and event ids are
    unique: id and digest together tell a retry from a reused id. The ids, not the body: a
    retry's body differs (``unsigned.age``, ephemeral events are not resent). Cheap: one hash
    of some 50 bytes per event."""
    ids = [
        e["event_id"]
        for e in data.get("events") or ()
        if isinstance(e, dict) and isinstance(e.get("event_id"), str)
    ]
    if not ids:
        # No timeline events: to-device messages (room keys) and device lists are what makes
        # it new; a homeserver that restarted reuses ids, and taking such a transaction for a
        # retry would lose the room keys it carries. (Synapse never resends them, so with
        # timeline events the ids alone still tell a retry.)
        extras = [data.get(k) for k in _DIGESTED_EXTRAS if data.get(k)]
        if not extras:
            return ""
        raw = json.dumps(extras, sort_keys=True, default=str)
        return "x" + hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()
    return hashlib.blake2b("\0".join(ids).encode(), digest_size=16).hexdigest()


#: What identifies a transaction without timeline events (see :func:`events_digest`).
_DIGESTED_EXTRAS = (
    "de.sorunome.msc2409.to_device",
    "to_device",
    "org.matrix.msc3202.device_lists",
)


#: Every byte but an ASCII digit as a space, the digits as "0": a run of 19 zeros in the
#: translated body is an integer orjson would not keep exact (it reads integers past 64 bits,
#: and negative ones past 63, as floats; json keeps them as ints), or a long run of digits in
#: a string: either way :func:`parse_json` lets json read that body.
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_NUMBER = b"0" * 19


def parse_json(raw: bytes, text: str) -> Any:
    """``json.loads(text)``, with its answers and its errors, read by orjson where that gives
    the same result: a transaction's body (~36 KiB of 100 events) in about half the time.

    What orjson refuses and json takes (NaN and Infinity, lone surrogates from ``\\ud800``
    escapes, numbers past a float's range) and integers orjson would round go to json, so the
    result never depends on which parser read it (the one difference: orjson reads nesting
    up to 1024 levels, json to Python's recursion limit, just under 1,000 here)."""
    if orjson is not None and _LONG_NUMBER not in raw.translate(_DIGITS):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json's own verdict: it takes some of what orjson refuses
    return json.loads(text)


#: The body of every acknowledgement (a fresh ``web.Response`` each time: one per request).
_EMPTY_JSON = b"{}"


def matrix_error(status: int, errcode: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message, **extra}, status=status)


class TransactionSink(Protocol):
    """What the HTTP layer hands transactions and queries to (the bridge)."""

    async def store_transaction(self, txn: TxnKey, body: str | None) -> bool:
        """Remember a transaction (its body too, unless None); False if it is a retry."""
        ...

    def dispatch_transaction(self, txn: TxnKey, data: dict[str, Any]) -> None: ...

    async def wait_for_capacity(self) -> None: ...

    async def query_user(self, user_id: str) -> bool: ...

    async def query_alias(self, alias: str) -> bool: ...

    async def thirdparty(
        self, kind: str, protocol: str | None, query: dict[str, str]
    ) -> list[dict[str, Any]] | dict[str, Any] | None: ...


class AppServiceServer:
    def __init__(
        self,
        sink: TransactionSink,
        hs_token: str,
        *,
        max_body_size: int = 10 * 1024 * 1024,
        on_ping: Callable[[str | None], Awaitable[None]] | None = None,
        metrics: Any = None,
    ) -> None:
        self.sink = sink
        self._hs_token = hs_token.encode()
        self.max_body_size = max_body_size
        self.on_ping = on_ping
        self.metrics = metrics
        self.app = web.Application(
            middlewares=[self._errors_middleware, self._auth_middleware],
            client_max_size=max_body_size,
        )
        r = self.app.router
        r.add_put(PREFIX + "/transactions/{txn_id}", self.handle_transaction)
        r.add_get(PREFIX + "/users/{user_id}", self.handle_query_user)
        r.add_get(PREFIX + "/rooms/{alias}", self.handle_query_alias)
        r.add_post(PREFIX + "/ping", self.handle_ping)
        r.add_get(PREFIX + "/thirdparty/protocol/{protocol}", self.handle_thirdparty)
        r.add_get(PREFIX + "/thirdparty/location/{protocol}", self.handle_thirdparty)
        r.add_get(PREFIX + "/thirdparty/user/{protocol}", self.handle_thirdparty)
        r.add_get(PREFIX + "/thirdparty/location", self.handle_thirdparty)
        r.add_get(PREFIX + "/thirdparty/user", self.handle_thirdparty)
        self.runner: web.AppRunner | None = None
        self._refused_logged_at = float("-inf")
        self._refused_since_log = 0
        self._too_deep_logged_at = float("-inf")
        #: Where failing requests failed -> (when last logged, repeats since).
        self._failures: dict[tuple[Any, ...], tuple[float, int]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        self.runner = await start_listener(self.app, host, port)
        log.info("Appservice API listening on %s:%d", host, port)

    async def stop(self) -> None:
        if self.runner:
            runner, self.runner = self.runner, None
            await stop_listener(runner)

    # -- middlewares -------------------------------------------------------------------------

    @web.middleware
    async def _errors_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return matrix_error(404, "M_UNRECOGNIZED", "Unrecognized request")
        except web.HTTPMethodNotAllowed as e:
            resp = matrix_error(405, "M_UNRECOGNIZED", f"Method {request.method} not allowed")
            resp.headers["Allow"] = ", ".join(sorted(e.allowed_methods))
            return resp
        except web.HTTPRequestEntityTooLarge:
            return matrix_error(413, "M_TOO_LARGE", "Request body too large")
        except web.HTTPException:
            raise
        except Exception as e:
            self._failed(request, e)
            return matrix_error(500, "M_UNKNOWN", "Internal error")

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_matrix/app/"):
            return await handler(request)
        token: str | None = None
        auth = request.headers.get("Authorization")
        if auth is not None:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        if token is None:
            token = request.query.get("access_token")
        if token is None:
            self._refused(request, "no hs_token")
            return matrix_error(401, "M_UNAUTHORIZED", "Missing access token")
        if not hmac.compare_digest(token.encode(), self._hs_token):
            self._refused(request, "a wrong hs_token")
            return matrix_error(403, "M_FORBIDDEN", "Invalid access token")
        return await handler(request)

    def _failed(self, request: web.Request, e: Exception) -> None:
        """Log a request that failed (a 500) with its traceback once a minute per cause (the
        exception's type and where it was raised), the repeats counted: the homeserver
        retries a 5xx every few seconds, so a database outage logged a traceback each time."""
        tb = e.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        site = (type(e), tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb else (type(e),)
        now = time.monotonic()
        logged_at, repeats = self._failures.get(site, (float("-inf"), 0))
        if now - logged_at < REFUSED_LOG_INTERVAL:
            self._failures[site] = (logged_at, repeats + 1)
            log.debug("Error handling %s %s again: %s", request.method, request.path, e)
            return
        if len(self._failures) > 1000:
            self._failures.clear()
        self._failures[site] = (now, 0)
        log.error(
            "Error handling %s %s (answered 500, the homeserver retries)%s",
            request.method,
            request.path,
            f"; {repeats} more like it since the last report" if repeats else "",
            exc_info=e,
        )

    def _refused(self, request: web.Request, why: str) -> None:
        """Say that requests are refused, at most once a minute (never the token itself).

        A homeserver whose registration file does not match the config (an old file, or the
        config regenerated since) has every transaction refused: without this, only the
        homeserver's log would show why nothing is bridged."""
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._refused_logged_at < REFUSED_LOG_INTERVAL:
            return
        log.warning(
            "Refused %d request(s) with %s, the last from %s to %s %s. If it is the homeserver, "
            "its registration file's hs_token is not the one in this config: give it the file "
            "generate-registration wrote and restart it.",
            self._refused_since_log,
            why,
            request.remote,
            request.method,
            request.path,
        )
        self._refused_logged_at = now
        self._refused_since_log = 0

    # -- handlers ----------------------------------------------------------------------------

    async def _read_json(self, request: web.Request) -> tuple[str, Any] | web.Response:
        if request.content_length is not None and request.content_length > self.max_body_size:
            return matrix_error(413, "M_TOO_LARGE", "Request body too large")
        raw = await request.read()  # raises HTTPRequestEntityTooLarge past client_max_size
        try:
            text = raw.decode("utf-8")
            return text, parse_json(raw, text)
        except (UnicodeDecodeError, ValueError):
            return matrix_error(400, "M_NOT_JSON", "Body is not valid JSON")
        except RecursionError:
            # Valid JSON nested deeper than the parser goes: a client error, never a 500
            # (a homeserver retries those forever, and everything queued behind waits).
            # Synapse itself refuses events nested past ~100 levels, so this is not one.
            now = time.monotonic()
            if now - self._too_deep_logged_at >= REFUSED_LOG_INTERVAL:  # a retry: once
                self._too_deep_logged_at = now
                log.warning(
                    "Refused %s %s: JSON nested too deep to parse (%d bytes)",
                    request.method,
                    request.path,
                    len(raw),
                )
            return matrix_error(400, "M_NOT_JSON", "Body is nested too deeply")

    async def handle_transaction(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        txn_id = request.match_info["txn_id"]
        parsed = await self._read_json(request)
        if isinstance(parsed, web.Response):
            return parsed
        body, data = parsed
        if not isinstance(data, dict):
            return matrix_error(400, "M_BAD_JSON", "Transaction body must be a JSON object")
        for key in ("events", "ephemeral", "de.sorunome.msc2409.ephemeral", "to_device"):
            if key in data and not isinstance(data[key], list):
                return matrix_error(400, "M_BAD_JSON", f"'{key}' must be a list")
        await self.sink.wait_for_capacity()
        # A transaction with nothing to replay (only events the bridge ignores) is remembered
        # by id alone: its body need not be stored, nor cleared afterwards.
        needs_replay = getattr(self.sink, "needs_replay", None)
        if needs_replay is not None and not needs_replay(data):
            body = None
        txn = (txn_id, events_digest(data))
        if await self.sink.store_transaction(txn, body):
            self.sink.dispatch_transaction(txn, data)
        else:
            log.debug("Transaction %s already received, acknowledging again", txn_id)
        if self.metrics:
            self.metrics.observe_ack(time.perf_counter() - start, len(data.get("events", ())))
        return web.Response(body=_EMPTY_JSON, content_type="application/json")

    async def handle_query_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]  # aiohttp has already percent-decoded it
        if await self.sink.query_user(user_id):
            return web.json_response({})
        return matrix_error(404, "M_NOT_FOUND", "No such user")

    async def handle_query_alias(self, request: web.Request) -> web.Response:
        alias = request.match_info["alias"]
        if await self.sink.query_alias(alias):
            return web.json_response({})
        return matrix_error(404, "M_NOT_FOUND", "No such room alias")

    async def handle_ping(self, request: web.Request) -> web.Response:
        parsed = await self._read_json(request)
        if isinstance(parsed, web.Response):
            return parsed
        _, data = parsed
        txn = data.get("transaction_id") if isinstance(data, dict) else None
        if self.on_ping:
            await self.on_ping(txn if isinstance(txn, str) else None)
        return web.json_response({})

    async def handle_thirdparty(self, request: web.Request) -> web.Response:
        kind = request.path.split("/thirdparty/", 1)[1].split("/", 1)[0]
        protocol = request.match_info.get("protocol")
        query = {k: v for k, v in request.query.items() if k != "access_token"}
        result = await self.sink.thirdparty(kind, protocol, query)
        if result is None or (kind == "protocol" and not result):
            return matrix_error(404, "M_NOT_FOUND", "No such protocol or entity")
        return web.json_response(result)
