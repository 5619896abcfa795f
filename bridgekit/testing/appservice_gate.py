"""The appservice URL the test Synapse knows: a gate in front of the tests' bridges.

A test session has one Synapse and one appservice registration, and each test starts its own
bridge on the same port. Without a gate, whatever Synapse still had for a test's bridge when the
test ended (a transaction in flight, its users' presence, a receipt) is pushed at a closed port:
Synapse marks the appservice down and from then on, until its recoverer runs again (2, 4 ... 512
s later, or a bridge's ping forces it), it drops ephemeral events (receipts, typing) and holds
timeline events back. A failure reported just after the next test's bridge pinged (a refused
connection takes Twisted 0.3 s) left that test's first seconds in that state: its receipts were
lost and its messages late. And when the recoverer ran, it sent the earlier tests' events to the
next test's bridge.

The gate forwards to the bridge while a test runs, holding requests while a bridge is starting,
and answers Synapse itself between tests (acknowledging and dropping what it sends: it belonged
to a finished test). A test that stops its bridge still sees Synapse's real behaviour (the gate
answers 502, as good as a refused connection), and at the end of such a test the gate makes
Synapse flush what it held to the gate, so the next test starts with the appservice up.

A request forwarded to a bridge that then stops is answered 502 when the fixture says it stopped
(:meth:`AppserviceGate.bridge_stopped`), not when the connection ends: on Python 3.11 a
connection asyncio accepts just as the listener closes is never served nor closed (its
transport fails to attach to the closed server) until the garbage collector frees it, and
Synapse's push on it, and every push queued behind it, waited up to its 60 s timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

import aiohttp
from aiohttp import web

from bridgekit.contract.http_listener import start_listener, stop_listener
from bridgekit.testing.ports import free_port

log = logging.getLogger("bridgekit.testing.gate")

#: How long a request waits for a bridge that is starting (Synapse itself waits 60 s).
START_WAIT = 30.0
_HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}
_JSON = "application/json"


class AppserviceGate:
    """An HTTP server in a thread of its own (it outlives each test's event loop)."""

    def __init__(self, bridge_port: int) -> None:
        self.port = free_port()
        self.bridge_port = bridge_port
        #: A test is running: forward to its bridge (else answer Synapse here).
        self.in_test = False
        #: A bridge is starting: hold requests until it listens.
        self.starting = False
        #: Transactions answered here between tests (ids), for tests of the gate.
        self.absorbed: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="gate")
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        #: Requests being forwarded to the bridge (in the gate's loop).
        self._forwarding: set[asyncio.Task[web.Response]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle (called from the test thread) -----------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._call(self._start()).result(timeout=30)

    def stop(self) -> None:
        self._call(self._stop()).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def bridge_stopped(self) -> None:
        """The test's bridge has stopped: what it was still sent gets 502 now (see the
        module's doc). From the test's event loop."""
        await asyncio.wrap_future(self._call(self._drop_forwarding()))

    def _call(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Any, timeout: float = 60) -> Any:
        """Run ``coro`` in the gate's loop and wait for it (from a fixture, with or without an
        event loop of its own)."""
        return self._call(coro).result(timeout=timeout)

    async def _start(self) -> None:
        # A new connection per request: a pooled one to a bridge that has stopped would fail
        # the next request, and Synapse would count the appservice as down for nothing.
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=None, connect=5),
            auto_decompress=False,
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = await start_listener(app, "127.0.0.1", self.port)

    async def _drop_forwarding(self) -> None:
        for task in list(self._forwarding):
            task.cancel()

    async def _stop(self) -> None:
        if self._runner is not None:
            await stop_listener(self._runner)
        if self._http is not None:
            await self._http.close()

    # -- requests (in the gate's thread) -------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self.in_test:
            return self._answer_between_tests(request)
        task = asyncio.ensure_future(self._forward(request, body))
        self._forwarding.add(task)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # by bridge_stopped()
                return _error(502, "M_UNKNOWN", "the bridge stopped with the request in flight")
            task.cancel()  # Synapse went away (aiohttp cancels the handler)
            raise
        finally:
            self._forwarding.discard(task)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._http is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WAIT
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = f"http://127.0.0.1:{self.bridge_port}{request.rel_url}"
        while True:
            try:
                async with self._http.request(
                    request.method, target, data=body, headers=headers
                ) as resp:
                    data = await resp.read()
                    return web.Response(
                        status=resp.status,
                        body=data,
                        headers={"Content-Type": resp.headers.get("Content-Type", _JSON)},
                    )
            except aiohttp.ClientConnectorError:
                if self.starting and self.in_test and loop.time() < deadline:
                    await asyncio.sleep(0.02)
                    continue
                return _error(502, "M_UNKNOWN", "the bridge is not running")
            except (TimeoutError, aiohttp.ClientError):
                # The bridge stopped with this request in flight: as Synapse would see it.
                return _error(502, "M_UNKNOWN", "the bridge dropped the request")

    def _answer_between_tests(self, request: web.Request) -> web.Response:
        path = request.path
        if request.method == "PUT" and "/transactions/" in path:
            self.absorbed.append(path.rsplit("/", 1)[-1])
            return web.Response(body=b"{}", content_type=_JSON)
        if request.method == "POST" and path.endswith("/ping"):
            return web.Response(body=b"{}", content_type=_JSON)
        return _error(404, "M_NOT_FOUND", "no bridge is running")


def _error(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)
