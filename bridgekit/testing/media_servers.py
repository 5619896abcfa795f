"""Two loopback HTTP servers for the remote media tests: a legitimate one (the test allow-lists
its port) and the bait (an internal service the bridge must never fetch from)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from bridgekit.testing.ports import free_port

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81"
    b"\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
SECRET = b'{"logins": {"secret-login": {"user": "@admin:internal"}}}'


@dataclass
class MediaServers:
    good: str  # base URL of the allow-listed server
    bait: str  # base URL of the internal service
    good_port: int
    bait_port: int
    bait_hits: list[str] = field(default_factory=list)
    big_bytes_sent: list[int] = field(default_factory=list)
    hang_hits: list[str] = field(default_factory=list)
    hang_times: list[float] = field(default_factory=list)  # time.monotonic() of each hang hit
    emoji_hits: list[str] = field(default_factory=list)

    @staticmethod
    def emoji_image(name: str) -> bytes:
        """What ``/emoji/<name>.png`` serves: an image of its own per name."""
        return PNG + name.encode()


@asynccontextmanager
async def media_servers(big_size: int = 4 * 1024 * 1024) -> AsyncIterator[MediaServers]:
    good_port, bait_port = free_port(), free_port()
    servers = MediaServers(
        f"http://127.0.0.1:{good_port}", f"http://127.0.0.1:{bait_port}", good_port, bait_port
    )

    async def bait(request: web.Request) -> web.Response:
        servers.bait_hits.append(request.path)
        return web.Response(body=SECRET, content_type="image/png")

    async def cat(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def emoji(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        servers.emoji_hits.append(name)
        return web.Response(body=MediaServers.emoji_image(name), content_type="image/png")

    async def chunked_cat(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(PNG[:20])
        await resp.write(PNG[20:])
        await resp.write_eof()
        return resp

    async def short(request: web.Request) -> web.StreamResponse:
        """Announces 100000 bytes, sends 1000 and hangs up (after the upload has begun)."""
        resp = web.StreamResponse(headers={"Content-Type": "image/png", "Content-Length": "100000"})
        await resp.prepare(request)
        await resp.write(b"s" * 1000)
        await asyncio.sleep(0.2)
        assert request.transport is not None
        request.transport.close()
        return resp

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * big_size, content_type="image/png")

    async def big_unsized(request: web.Request) -> web.StreamResponse:
        """No Content-Length: the size is only known by counting."""
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        try:
            while sent < big_size:
                await resp.write(b"y" * 65536)
                sent += 65536
        finally:
            servers.big_bytes_sent.append(sent)
        await resp.write_eof()
        return resp

    async def hang(request: web.Request) -> web.Response:
        servers.hang_hits.append(request.path)
        servers.hang_times.append(time.monotonic())
        await asyncio.sleep(3600)
        return web.Response(body=b"")

    async def to_bait(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{servers.bait}/status")

    async def to_localhost(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://localhost:{bait_port}/status")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    good_app = web.Application()
    for path, handler in (
        ("/cat.png", cat),
        ("/chunked-cat.png", chunked_cat),
        ("/short.png", short),
        ("/big.png", big),
        ("/unsized.png", big_unsized),
        ("/hang.png", hang),
        ("/to-bait.png", to_bait),
        ("/to-localhost.png", to_localhost),
        ("/loop", loop),
        ("/emoji/{name}.png", emoji),
    ):
        good_app.router.add_get(path, handler)
    bait_app = web.Application()
    bait_app.router.add_get("/{tail:.*}", bait)
    runners = []
    for app, port in ((good_app, good_port), (bait_app, bait_port)):
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    try:
        yield servers
    finally:
        for runner in runners:
            await runner.cleanup()
