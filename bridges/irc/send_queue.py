"""Writing to an IRC connection: lines now, or through the flood-paced send queue.

Mixed into :class:`~bridges.irc.client.IRCConnection`. Kept apart because the queue has
its own contract: lines wait for the connection through reconnects rather than being
dropped, are let out by the token bucket, and each burst is preceded by its durable
progress marker (see :mod:`bridges.irc.progress`) with no await between marker and write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .lines import LineError, build_line

if TYPE_CHECKING:
    from .client import IRCConnection

log = logging.getLogger("bridgekit.irc.client")


@dataclass(eq=False)
class SendItem:
    """Lines that belong together (one Matrix message), written in order."""

    lines: list[bytes]
    done: asyncio.Future[None]
    #: Awaited before each burst of lines with the index of the burst's last line (a durable
    #: progress marker, see :mod:`bridges.irc.progress`); -1 takes back a burst not written.
    before_write: Callable[[int], Awaitable[None]] | None = None
    #: Called with (first, end) right after lines [first, end) were written, with no await
    #: between: what waits for those lines' echoes starts waiting on this connection.
    on_written: Callable[[int, int], None] | None = None
    sent: int = 0


class SendQueueMixin:
    """The writing half of :class:`~bridges.irc.client.IRCConnection`."""

    def write(self: IRCConnection, line: bytes) -> bool:
        """Write a line now (protocol replies, registration). False if not connected."""
        proto = self._proto
        if proto is None or proto.transport is None:
            return False
        proto.write(line)
        return True

    def send(
        self: IRCConnection,
        *lines: bytes,
        before_write: Callable[[int], Awaitable[None]] | None = None,
        on_written: Callable[[int, int], None] | None = None,
    ) -> asyncio.Future[None]:
        """Queue lines for the flood-paced writer; the future resolves once all are written.

        Lines wait for the connection (through reconnects) rather than being dropped.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append(SendItem(list(lines), done, before_write, on_written))
        if self.idle:
            self.idle = False
            self.start()
        self._wake.set()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run_pump(), name=f"irc-send-{self.label}")
        return done

    async def _run_pump(self: IRCConnection) -> None:
        while self.queue:
            item = self.queue[0]
            if item.done.done():  # cancelled by its sender
                self.queue.popleft()
                continue
            if not self.ready.is_set():
                await self.ready.wait()
                continue
            delay = self.bucket.wait_time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            # The lines the bucket lets out now: one marker (one commit) covers them all.
            last = item.sent
            if item.before_write is not None:
                last = min(len(item.lines), item.sent + self.bucket.whole()) - 1
                try:
                    await item.before_write(last)
                    if not self.ready.is_set():
                        # Marked but not written: the mark must not outlive a kill meanwhile.
                        await item.before_write(item.sent - 1)
                        continue
                except Exception as e:
                    self.queue.popleft()
                    item.done.set_exception(e)
                    continue
            # No await between the marker above and the writes below.
            first = item.sent
            while item.sent <= last:
                if not self.write(item.lines[item.sent]):
                    break
                self.bucket.take()
                item.sent += 1
            if item.on_written is not None and item.sent > first:
                item.on_written(first, item.sent)
            if item.sent >= len(item.lines):
                self.queue.popleft()
                if not item.done.done():
                    item.done.set_result(None)

    def send_raw_safe(self: IRCConnection, command: str, *params: str) -> bool:
        """Build and write one line now; False if it cannot be built safely or sent."""
        try:
            line = build_line(command, *params)
        except LineError as e:
            log.warning("%s: refused to send %s: %s", self.label, command, e)
            return False
        return self.write(line)
