"""Live events of a login held behind its catch-up.

A connector that catches up after a (re)connect (Slack's ``conversations.history``, Discord's
``messages?after=``) queues the catch-ups through the runtime's backfill
(:class:`~bridgekit.contract.capabilities.BackfillHandler`, whose ``catch_up_queued`` says when
they are queued). A live event received meanwhile must wait, or it would overtake what was
said before it: the login closes its gate at each connect, its event handlers ``await
gate.wait()``, and ``catch_up_queued`` opens it.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("bridgekit.contract.live_gate")

#: Seconds live events wait for the catch-ups to be queued before going on regardless.
HOLD_TIMEOUT = 30.0


class LiveGate:
    """Holds live events of one login from its (re)connect until its catch-ups are queued."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def wait(self, timeout: float = HOLD_TIMEOUT) -> None:
        if self._open.is_set():
            return
        try:
            await asyncio.wait_for(self._open.wait(), timeout)
        except TimeoutError:
            log.warning("Catch-up was not queued in %.0f s: live events go on", timeout)
            self._open.set()
