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
from collections.abc import Hashable

log = logging.getLogger(__name__)


class SendGate:
    """Keys are portal room ids (strings: their hash is cached), since every Matrix event of a
    portal passes here and a frozen-dataclass key is hashed afresh on every lookup."""

    def __init__(self, max_wait: float = 30.0) -> None:
        self.max_wait = max_wait
        self._busy: dict[Hashable, int] = {}
        self._idle: dict[Hashable, asyncio.Event] = {}

    def sending(self, key: Hashable) -> _Sending:
        """``with gate.sending(room_id):`` around a Matrix event's trip to the network and the
        mapping of its ids (a plain context manager: no generator, no coroutine per use)."""
        return _Sending(self, key)

    def enter(self, key: Hashable) -> None:
        busy = self._busy
        busy[key] = busy.get(key, 0) + 1

    def leave(self, key: Hashable) -> None:
        left = self._busy[key] - 1
        if left:
            self._busy[key] = left
            return
        del self._busy[key]
        if self._idle and (idle := self._idle.pop(key, None)) is not None:
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


class _Sending:
    __slots__ = ("gate", "key")

    def __init__(self, gate: SendGate, key: Hashable) -> None:
        self.gate, self.key = gate, key

    def __enter__(self) -> None:
        self.gate.enter(self.key)

    def __exit__(self, *exc: object) -> None:
        self.gate.leave(self.key)
