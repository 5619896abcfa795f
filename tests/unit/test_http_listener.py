"""Stopping an HTTP listener (bridgekit/contract/http_listener.py): a connection that comes
just as the listener stops must not hold the stop (aiohttp's own stop waited 60 s for it),
and a request already being handled is still answered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridgekit.contract.http_listener import start_listener, stop_listener
from bridgekit.matrix.appservice import PREFIX, AppServiceServer
from bridgekit.testing.ports import free_port
from tests.unit.test_appservice_http import HS_TOKEN, FakeSink

pytestmark = pytest.mark.engine_independent

_BODY = json.dumps({"events": []}).encode()
_REQUEST = (
    f"PUT {PREFIX}/transactions/t1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    f"Authorization: Bearer {HS_TOKEN}\r\nContent-Type: application/json\r\n"
    f"Content-Length: {len(_BODY)}\r\n\r\n"
).encode() + _BODY


async def _stop_as_a_push_arrives(turns_before: int, turns_after: int) -> bytes | None:
    """A homeserver's push connects to the appservice listener, the bridge stops
    ``turns_before`` loop turns later, the push's request is sent ``turns_after`` turns after
    that. Fails if the stop takes more than 2 s; returns what the homeserver read: an answer,
    b"" (closed) or None (nothing: see the test)."""
    loop = asyncio.get_running_loop()
    server = AppServiceServer(FakeSink(), HS_TOKEN)
    port = free_port()
    await server.start("127.0.0.1", port)
    # Blocking on purpose: the kernel completes the connection before the loop turns again,
    # so the turn at which the listener sees it is the same every run.
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    try:
        for _ in range(turns_before):
            await asyncio.sleep(0)
        stop = asyncio.ensure_future(server.stop())
        for _ in range(turns_after):
            await asyncio.sleep(0)
        with contextlib.suppress(OSError):  # already closed by the stop
            sock.sendall(_REQUEST)
        await asyncio.wait_for(stop, 2)
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.5)
        except ConnectionResetError:
            return b""
        except TimeoutError:
            return None
    finally:
        sock.close()


async def _every_interleaving() -> list[bytes | None]:
    return [await _stop_as_a_push_arrives(b, a) for b in range(7) for a in range(3)]


def _on_loop(kind: str, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(main())
    return asyncio.run(main())


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_push_arriving_as_the_bridge_stops_does_not_hold_the_stop(loop_kind: str) -> None:
    """Each interleaving of the push's connection, the stop and the push's request: the stop
    returns at once (one interleaving, a different one on each loop, held aiohttp's own stop
    and the push 60 s). The push gets its answer, or its connection is closed, or (None: on
    Python 3.11, a connection asyncio accepts as the listener closes is left unserved and
    open until the garbage collector frees it; the tests' appservice gate answers Synapse for
    it, see bridgekit/testing/appservice_gate.py) nothing."""
    answers = _on_loop(loop_kind, _every_interleaving)
    assert all(a is None or a == b"" or a.startswith(b"HTTP/1.1 200") for a in answers)
    assert any(a and a.startswith(b"HTTP/1.1 200") for a in answers)  # the early ones


async def test_a_request_being_handled_is_answered_within_the_grace() -> None:
    """A request the stop finds being handled gets its answer (not cut by the closing of
    the idle connections); one that takes longer than the grace is cut when it ends."""
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="done")

    async def stuck(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="never")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/stuck", stuck)
    port = free_port()
    runner = await start_listener(app, "127.0.0.1", port, grace=1)
    async with aiohttp.ClientSession() as http:

        async def get(path: str) -> str:
            try:
                async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                    return await resp.text()
            except aiohttp.ClientError:
                return "dropped"

        answers = asyncio.gather(get("/slow"), get("/stuck"))
        await asyncio.sleep(0.1)  # both are being handled
        loop = asyncio.get_running_loop()
        began = loop.time()
        await stop_listener(runner)
        assert loop.time() - began < 5
        assert await answers == ["done", "dropped"]


async def test_a_stop_just_after_a_body_too_large_was_refused_does_not_wait_for_it() -> None:
    """A 413 given before the body was read: the connection reads on for a while, so that the
    client, still sending, gets to read it, even once the client has gone, and a stop waited
    for that (aiohttp's 10 s)."""
    server = AppServiceServer(FakeSink(), HS_TOKEN, max_body_size=1024)
    port = free_port()
    await server.start("127.0.0.1", port)
    async with aiohttp.ClientSession() as http:
        async with http.put(
            f"http://127.0.0.1:{port}{PREFIX}/transactions/big",
            data=b"x" * (4 * 1024 * 1024),
            headers={"Authorization": f"Bearer {HS_TOKEN}"},
        ) as resp:
            assert resp.status == 413
    loop = asyncio.get_running_loop()
    began = loop.time()
    await server.stop()
    assert loop.time() - began < 3
