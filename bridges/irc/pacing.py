"""Pacing that keeps the bridge from flooding an IRC server: a token bucket per connection
for lines, and one start pacer per server for connections (a restart reconnects thousands)."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """``rate`` lines per second with bursts of ``burst`` lines."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def wait_time(self) -> float:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def whole(self) -> int:
        """Lines that may go out now, at least one (call after :meth:`wait_time` said 0)."""
        return max(1, int(self.tokens))

    def take(self) -> None:
        self.tokens -= 1


class StartPacer:
    """Connection starts per second, shared by all connections to one server.

    Starts are spaced ``1 / rate`` apart in the order they ask (a reserved slot each), so a
    mass reconnect after a restart or a netsplit does not flood the server. It paces starts
    only: a slow registration (InspIRCd completes them on a 1 s timer) does not hold up the
    next start, unlike a small concurrency limit held through the registration.
    """

    __slots__ = ("interval", "_next")

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    def delay(self) -> float:
        """Reserve the next start slot; seconds until it comes."""
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.delay()
        if delay > 0:
            await asyncio.sleep(delay)
