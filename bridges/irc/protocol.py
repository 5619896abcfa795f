"""The asyncio protocol under an :class:`~bridges.irc.client.IRCConnection`.

Kept apart from the connection because it is the hot path of every byte read: it drives
TLS over the plain transport, frames and parses lines, and pauses reading while a stream
goes on so that the lines gather in the socket and are handled together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, cast

from .config import READ_STREAM_GAP
from .lines import ParseError, parse_line
from .tls import TLSSession

if TYPE_CHECKING:
    from .client import IRCConnection

log = logging.getLogger("bridgekit.irc.client")

_MAX_BUFFER = 1 << 20


class IRCProtocol(asyncio.Protocol):
    """Bytes in and out of one connection: TLS, line framing, read pauses for streams."""

    __slots__ = ("conn", "buffer", "transport", "tls")

    def __init__(self, conn: IRCConnection, tls: TLSSession | None = None) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        #: TLS driven here, over the plain TCP transport (see tls.py for why).
        self.tls = tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self.tls is not None:
            self.tls.start(self.transport)

    def write(self, data: bytes) -> None:
        if self.tls is not None:
            self.tls.write(data)
        elif self.transport is not None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.tls is not None:
            data = self.tls.feed(data)
            if not data:
                return  # handshake records, or a partial TLS record
        self.buffer += data
        conn = self.conn
        now = time.monotonic()
        previous, conn.last_rx = conn.last_rx, now
        if (
            now - previous < READ_STREAM_GAP
            and conn.registered
            and self.transport is not None
            and not conn.awaiting()
        ):
            # A stream (a paste, a bot, a busy channel): let the next lines gather in the
            # socket and handle them together. Longer when everything this connection hears
            # is bridged by another one (a busy channel shared by many Matrix users). Never
            # while our own lines await their echo, which would slow the sender down; and a
            # lone line is read at once (pausing costs more than it saves for one line).
            server = conn.server
            pause = server.read_batch
            if pause > 0 and data.count(b"\n") > 1:
                # The last pause gathered several lines: the stream goes on, rest longer.
                pause = min(max(conn.read_pause * 2, pause), server.read_batch_max)
            conn.read_pause = pause
            if server.follower_read_batch > pause and conn.follower():
                pause = server.follower_read_batch
            if pause > 0:
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(pause, self._resume)
        else:
            conn.read_pause = 0.0
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                break
            raw = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if not raw.strip():
                continue
            try:
                msg = parse_line(raw)
            except ParseError as e:
                log.debug("Unparsable line from %s: %s", conn.server.name, e)
                continue
            try:
                conn.handle_line(msg)
            except Exception:
                log.exception("Error handling %r", raw[:200])
        if len(self.buffer) > _MAX_BUFFER:
            log.warning("Line too long from %s; dropping the connection", conn.server.name)
            if self.transport is not None:
                self.transport.close()

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.tls is not None:
            self.tls.lost()
        self.conn.connection_lost(self, exc)
