"""Events of one channel handled in the order Slack sent them.

slack-sdk's Socket Mode client runs each envelope's listeners in a task of its own, so a slow
handler (a message whose files are being downloaded) would let the next message of the same
channel overtake it. Each event takes its channel's turn before its first suspension, so the
turns follow the order the envelopes arrived in (asyncio locks are first come, first served);
other channels are not held up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ChannelTurns:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        """Hold ``channel``'s turn (no turn for "": events without a channel)."""
        if not channel:
            yield
            return
        lock = self._locks.setdefault(channel, asyncio.Lock())
        self._users[channel] = self._users.get(channel, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[channel] -= 1
            if not self._users[channel]:  # nobody waiting: forget it (bounded by activity)
                del self._users[channel]
                del self._locks[channel]

    def __len__(self) -> int:
        return len(self._locks)
