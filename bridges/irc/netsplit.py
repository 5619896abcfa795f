"""Netsplit handling: QUIT storms are held back, and users who come back are never removed.

When two IRC servers lose their link, every user behind the other one QUITs at once with the
reason ``"server1.example server2.example"``; minutes later they all JOIN again. Bridged
naively that is thousands of leaves and joins on Matrix. So netsplit QUITs wait here for
``delay`` seconds: a user who rejoins in that time never left the Matrix room, and the rest
leave afterwards, in one batch.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

# Two host names separated by one space: what servers put in a netsplit QUIT.
_HOST = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_NETSPLIT_RE = re.compile(rf"^(?:Quit: )?({_HOST}) ({_HOST})$")

__all__ = ["NetsplitDebouncer", "is_netsplit_quit"]


def is_netsplit_quit(reason: str | None) -> bool:
    """Whether a QUIT reason looks like a server split (``"hub.net leaf.net"``)."""
    if not reason:
        return False
    m = _NETSPLIT_RE.match(reason)
    return bool(m) and m.group(1) != m.group(2)


class NetsplitDebouncer:
    """Holds (channel, user) leaves caused by a netsplit until ``delay`` has passed."""

    def __init__(self, delay: float, emit: Callable[[list[tuple[str, str, str]]], None]) -> None:
        self.delay = delay
        self.emit = emit
        #: (channel key, user key) -> reason
        self.pending: dict[tuple[str, str], str] = {}
        self._timer: asyncio.TimerHandle | None = None

    def quit(self, channel: str, user: str, reason: str) -> None:
        self.pending[(channel, user)] = reason
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.flush)

    def rejoined(self, channel: str, user: str) -> bool:
        """True if the user was split off this channel: the join is not news on Matrix."""
        return self.pending.pop((channel, user), None) is not None

    def flush(self) -> None:
        self._timer = None
        batch = [(c, u, r) for (c, u), r in self.pending.items()]
        self.pending.clear()
        if batch:
            self.emit(batch)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
