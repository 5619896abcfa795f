"""The guarded remote media fetcher against real loopback HTTP servers: the bait (an internal
service) is never reached, directly, by name or by redirect; sizes and time are capped."""

from __future__ import annotations

import asyncio
import time

import pytest

from bridgekit.matrix.fetcher import FetchError, MediaFetcher
from bridgekit.testing.media_servers import PNG, media_servers


def fetcher_for(good_port: int, **kw: object) -> MediaFetcher:
    return MediaFetcher(allow=[f"127.0.0.1:{good_port}"], **kw)  # type: ignore[arg-type]


async def test_bait_on_loopback_is_refused_before_any_connection() -> None:
    async with media_servers() as s:
        fetcher = fetcher_for(s.good_port)
        try:
            data, mime = await fetcher.fetch(f"{s.good}/cat.png")  # allow-listed: fetched
            assert bytes(data) == PNG and mime == "image/png"
            for url in (
                f"{s.bait}/status",  # the literal address, another port
                f"http://localhost:{s.bait_port}/status",  # a name resolving to loopback
                f"http://[::ffff:127.0.0.1]:{s.bait_port}/status",  # IPv4-mapped IPv6
                f"{s.good}/to-bait.png",  # a redirect to the bait
                f"{s.good}/to-localhost.png",  # a redirect to the bait by name
            ):
                with pytest.raises(FetchError, match="not public"):
                    await fetcher.fetch(url)
            # Forms of 127.0.0.1 that getaddrinfo would accept: refused one way or another.
            for url in (f"http://127.1:{s.bait_port}/", f"http://2130706433:{s.bait_port}/"):
                with pytest.raises(FetchError):
                    await fetcher.fetch(url)
            assert s.bait_hits == []
        finally:
            await fetcher.close()


async def test_without_the_allow_list_loopback_is_refused() -> None:
    async with media_servers() as s:
        fetcher = MediaFetcher()
        try:
            with pytest.raises(FetchError, match="not public"):
                await fetcher.fetch(f"{s.good}/cat.png")
        finally:
            await fetcher.close()


async def test_other_schemes_and_redirect_loops_are_refused() -> None:
    async with media_servers() as s:
        fetcher = fetcher_for(s.good_port, max_redirects=3)
        try:
            for url in ("file:///etc/passwd", "ftp://example.org/x", "gopher://127.0.0.1/"):
                with pytest.raises(FetchError, match="http"):
                    await fetcher.fetch(url)
            with pytest.raises(FetchError, match="more than 3 redirects"):
                await fetcher.fetch(f"{s.good}/loop")
        finally:
            await fetcher.close()


async def test_size_cap_by_content_length_and_by_counting() -> None:
    async with media_servers(big_size=4 * 1024 * 1024) as s:
        fetcher = fetcher_for(s.good_port, max_size=256 * 1024)
        try:
            with pytest.raises(FetchError, match="larger than 256 KiB"):
                await fetcher.fetch(f"{s.good}/big.png")
            with pytest.raises(FetchError, match="larger than 256 KiB"):
                await fetcher.fetch(f"{s.good}/unsized.png")
            # An answer cut off before its announced size is a failure, not a short file.
            with pytest.raises(FetchError, match="could not download"):
                await fetcher.fetch(f"{s.good}/short.png")
            # The reading stopped near the cap: the server could not send it all.
            await asyncio.sleep(0.2)
            assert s.big_bytes_sent and s.big_bytes_sent[0] < 4 * 1024 * 1024
        finally:
            await fetcher.close()


async def test_a_link_that_never_answers_ends_at_the_timeout_and_slots_are_bounded() -> None:
    async with media_servers() as s:
        fetcher = fetcher_for(s.good_port, timeout=1, concurrency=2)
        try:
            start = time.monotonic()
            results = await asyncio.gather(
                *(fetcher.fetch(f"{s.good}/hang.png") for _ in range(5)), return_exceptions=True
            )
            elapsed = time.monotonic() - start
            assert all(isinstance(r, FetchError) and "no answer" in str(r) for r in results)
            # Waiting for a slot counts: all five end at the one timeout, not 5/2 of it.
            assert elapsed < 2.5, elapsed
            # Never more connections at once than the concurrency: until the first two time out
            # (1 s), only two reach the server. (When they end, a fetch whose own timeout has
            # not fired yet may take a freed slot: so the total may be more than 2.)
            early = [t for t in s.hang_times if t - start < 0.8]
            assert 1 <= len(early) <= 2, s.hang_times
        finally:
            await fetcher.close()
