"""Keeping ghosts' presence alive.

A homeserver times out the presence of a user who does not sync: Synapse marks each of a
user's devices offline 30 s (``presence.sync_online_timeout``) after its last sync or presence
update. Ghosts never sync, so a remote user shown "online" or "away" would read "offline" half a
minute later. The runtime therefore sets each ghost's last presence again every
``bridge.presence_refresh`` seconds, until the remote side reports it offline or the ghost
leaves a portal (then the homeserver's timeout takes it offline).

Setting the same presence again changes nothing a client sees, so the homeserver sends nothing
on: the cost is one request per present ghost per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("bridgekit.portal.presence")

#: Refreshes in flight at once (a bridge with thousands of present ghosts must not stampede).
CONCURRENCY = 8

SetPresence = Callable[[str, str, str | None], Awaitable[None]]


class PresenceKeeper:
    """The ghosts whose presence is not offline, and a loop that sets it again in time."""

    def __init__(self, interval: float, set_presence: SetPresence) -> None:
        self.interval = interval
        self._set = set_presence
        #: ghost MXID -> (presence, status message, network, monotonic time it was last set)
        self._kept: dict[str, tuple[str, str | None, str, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, mxid: object) -> bool:
        return mxid in self._kept

    def set(self, mxid: str, presence: str, status: str | None, network: str = "") -> None:
        """The ghost's presence was just set: keep it (or stop keeping it, if offline)."""
        if self.interval <= 0 or presence == "offline":
            self.forget(mxid)
            return
        self._kept[mxid] = (presence, status, network, time.monotonic())
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def forget(self, mxid: str) -> None:
        """Stop refreshing a ghost (it left): the homeserver's timeout takes it offline."""
        self._kept.pop(mxid, None)

    def forget_network(self, network: str) -> None:
        """Stop refreshing every ghost of a network (it is unreachable)."""
        for mxid in [m for m, kept in self._kept.items() if kept[2] == network]:
            self.forget(mxid)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        while self._kept:
            now = time.monotonic()
            due = [m for m, kept in self._kept.items() if now - kept[3] >= self.interval]
            if due:
                await asyncio.gather(*(self._refresh(m, gate) for m in due))
            oldest = min((kept[3] for kept in self._kept.values()), default=now)
            rest = oldest + self.interval - time.monotonic()
            await asyncio.sleep(max(min(0.5, self.interval / 10), rest))

    async def _refresh(self, mxid: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            kept = self._kept.get(mxid)
            if kept is None:
                return
            presence, status, network, _ = kept
            try:
                await self._set(mxid, presence, status)
            except Exception as e:  # tried again next round, not at once
                log.warning("Could not refresh the presence of %s: %s", mxid, e)
            if self._kept.get(mxid, ())[:3] == (presence, status, network):  # not changed since
                self._kept[mxid] = (presence, status, network, time.monotonic())
