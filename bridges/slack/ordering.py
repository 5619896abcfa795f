"""One channel's Slack events are handled one at a time, in the order they arrived.

slack-sdk's Socket Mode client runs the listener of each envelope in a task of its own, and
HTTP pushes are handled concurrently too. Turning an event into remote events may wait on the
Web API (``users.info`` for a mention of someone not yet known), so without this a message
that mentions a new user reached Matrix after the plain message sent just after it
(bench/slack.py's mention phase showed it). Events of different channels still run in
parallel; events with no channel (``user_change``...) keep their order among themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any


def channel_of(event: Mapping[str, Any]) -> str:
    """The channel an event belongs to ("" for workspace-wide events)."""
    channel = event.get("channel")
    if isinstance(channel, dict):  # channel_rename, channel_created...
        channel = channel.get("id")
    if not channel:
        item = event.get("item")
        if isinstance(item, dict):  # reaction_added / reaction_removed
            channel = item.get("channel")
    return channel if isinstance(channel, str) else ""


class ChannelOrder:
    """A FIFO lock per (team, channel), dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, team: str, event: Mapping[str, Any]) -> AsyncIterator[None]:
        key = (team, channel_of(event))
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:  # asyncio.Lock wakes its waiters first in, first out
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
