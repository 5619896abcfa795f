"""The guarded fetcher with a network's credentials (``BridgeAPI.fetch_media``): headers go to
the URL's own origin only, a redirect can be refused outright, and a caller's lower size cap
holds, all through the same address guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bridgekit.contract.connector import MediaError
from bridgekit.matrix.fetcher import FetchError, MediaFetcher
from bridgekit.testing.media_servers import PNG


@dataclass
class Hosts:
    files: str
    other: str
    ports: tuple[int, int]
    other_hits: list[dict[str, str]] = field(default_factory=list)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@asynccontextmanager
async def hosts() -> AsyncIterator[Hosts]:
    other_app, files_app = web.Application(), web.Application()
    hits: list[dict[str, str]] = []

    async def other(request: web.Request) -> web.Response:
        hits.append(dict(request.headers))
        return web.Response(body=PNG, content_type="image/png")

    other_app.router.add_get("/{tail:.*}", other)
    other_runner, other_port = await _serve(other_app)

    async def private(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer xoxb-secret":
            return web.Response(status=401)
        return web.Response(body=PNG * 100, content_type="image/png")

    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{other_port}/stolen")

    async def here(request: web.Request) -> web.Response:
        raise web.HTTPFound("/private")

    files_app.router.add_get("/private", private)
    files_app.router.add_get("/elsewhere", elsewhere)
    files_app.router.add_get("/here", here)
    files_runner, files_port = await _serve(files_app)
    try:
        yield Hosts(
            f"http://127.0.0.1:{files_port}",
            f"http://127.0.0.1:{other_port}",
            (files_port, other_port),
            hits,
        )
    finally:
        await files_runner.cleanup()
        await other_runner.cleanup()


AUTH = {"Authorization": "Bearer xoxb-secret"}


async def test_credentials_reach_their_origin_and_no_other() -> None:
    async with hosts() as h:
        fetcher = MediaFetcher(allow=[f"127.0.0.1:{p}" for p in h.ports])
        try:
            data, mime = await fetcher.fetch(f"{h.files}/private", headers=AUTH)
            assert bytes(data) == PNG * 100 and mime == "image/png"
            with pytest.raises(FetchError, match="401"):
                await fetcher.fetch(f"{h.files}/private")
            # A redirect on the same origin keeps them.
            data, _ = await fetcher.fetch(f"{h.files}/here", headers=AUTH)
            assert bytes(data) == PNG * 100
            # Followed to another origin, the credentials stay behind.
            await fetcher.fetch(f"{h.files}/elsewhere", headers=AUTH)
            assert len(h.other_hits) == 1
            assert "Authorization" not in h.other_hits[0]
            # Not followed at all when the caller says so.
            with pytest.raises(FetchError, match="redirected") as refused:
                await fetcher.fetch(f"{h.files}/elsewhere", headers=AUTH, follow_redirects=False)
            assert isinstance(refused.value, MediaError) and not refused.value.too_large
            assert len(h.other_hits) == 1
        finally:
            await fetcher.close()


async def test_a_caller_cap_only_lowers_the_runtime_cap() -> None:
    async with hosts() as h:
        fetcher = MediaFetcher(allow=[f"127.0.0.1:{h.ports[0]}"], max_size=len(PNG) * 1000)
        try:
            with pytest.raises(MediaError) as big:
                await fetcher.fetch(f"{h.files}/private", headers=AUTH, max_size=len(PNG) * 10)
            assert big.value.too_large
            data, _ = await fetcher.fetch(f"{h.files}/private", headers=AUTH, max_size=10**9)
            assert len(data) == len(PNG) * 100
        finally:
            await fetcher.close()
        small = MediaFetcher(allow=[f"127.0.0.1:{h.ports[0]}"], max_size=len(PNG) * 10)
        try:
            with pytest.raises(MediaError) as big:
                await small.fetch(f"{h.files}/private", headers=AUTH, max_size=10**9)
            assert big.value.too_large
        finally:
            await small.close()


async def test_the_address_guard_still_holds_with_credentials() -> None:
    async with hosts() as h:
        fetcher = MediaFetcher()  # loopback not allowed
        try:
            with pytest.raises(FetchError, match="not public"):
                await fetcher.fetch(f"{h.files}/private", headers=AUTH, follow_redirects=False)
        finally:
            await fetcher.close()
