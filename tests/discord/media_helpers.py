"""What the Discord media tests share: real media bytes, Matrix media up- and downloads, and
a web server elsewhere on loopback that records whatever reaches it."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web


def png(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` (grey)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n" + b"0" * 300
OGG = b"OggS\x00\x02" + b"\x00" * 300


async def media_bytes(base_url: str, token: str, mxc: str) -> bytes:
    server, _, media_id = mxc[len("mxc://") :].partition("/")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 200
            return await resp.read()


async def upload(base_url: str, token: str, data: bytes, name: str, mime: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/_matrix/media/v3/upload",
            params={"filename": name},
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": mime},
        ) as resp:
            assert resp.status == 200, await resp.text()
            return str((await resp.json())["content_uri"])


def media_event(name: str) -> Any:
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == name


def notice_with(*words: str) -> Any:
    def match(e: dict[str, Any]) -> bool:
        content = e.get("content", {})
        body = str(content.get("body", ""))
        return content.get("msgtype") == "m.notice" and all(w in body for w in words)

    return match


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[int, list[str]]]:
    """Another web server on loopback (allowed by the runtime's media.allow, not a Discord
    media host): it records the path of whatever reaches it and answers with an image."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path_qs)
        return web.Response(body=png(2, 2), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, hits
    await runner.cleanup()


async def parts_of(bridge: Any, channel: Any, message_id: str, count: int) -> dict[str, str]:
    """The message's parts (part id -> event id) once ``count`` are recorded (the first
    part's row is written last)."""
    from bridges.discord.ids import portal_key
    from tests.conftest import eventually

    rows: list[Any] = []

    async def recorded() -> bool:
        rows[:] = await bridge.store.message_parts("discord", portal_key(channel.id), message_id)
        return len(rows) >= count

    await eventually(recorded)
    return {row.part: row.event_id for row in rows}
