"""Remote events of a portal wait while a Matrix event of that portal is being sent out.

Matrix -> remote and remote -> Matrix run in separate ordered queues. A network often tells
about a message we just sent (its echo, or a reply to it from a bot, or a reaction) before the
send call has returned the message's remote id, let alone before the runtime has mapped that
id to the Matrix event: Slack's socket event can beat ``chat.postMessage``'s answer, an echo
bot answers at once. Handled then, the echo is not recognised (it comes back as a duplicate)
and the reply quotes nothing. So the remote side of a portal waits, at most ``max_wait``
seconds, until no Matrix send of that portal is in flight: by then its ids are mapped (the
mapping is visible to lookups as soon as it is queued). mautrix-go's bridgev2 gets the same
from one event loop per portal for both directions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


class SendGate:
    def __init__(self, max_wait: float = 30.0) -> None:
        self.max_wait = max_wait
        self._busy: dict[Hashable, int] = {}
        self._idle: dict[Hashable, asyncio.Event] = {}

    @asynccontextmanager
    async def sending(self, key: Hashable) -> AsyncIterator[None]:
        """Held around a Matrix event's trip to the network and the mapping of its ids."""
        self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._busy[key] - 1
            if left:
                self._busy[key] = left
            else:
                del self._busy[key]
                if (idle := self._idle.pop(key, None)) is not None:
                    idle.set()

    async def wait_idle(self, key: Hashable) -> None:
        """Return once no send of ``key`` is in flight (or after ``max_wait``: a network that
        takes that long to answer must not hold its chat's incoming messages forever)."""
        if key not in self._busy:
            return
        idle = self._idle.setdefault(key, asyncio.Event())
        try:
            async with asyncio.timeout(self.max_wait):
                await idle.wait()
        except TimeoutError:
            log.warning("%s: a send is still in flight after %.0f s; going on", key, self.max_wait)
