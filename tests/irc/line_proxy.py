"""What the tests' IRC proxies share: a loopback listener that gives each client its own
connection to the real InspIRCd and relays lines both ways, so that a subclass only says how
it rewrites or answers them (``history_proxy.py``: chathistory; ``sasl_proxy.py``: SASL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from bridges.irc.lines import build_line, escape_tag_value
from tests.harness.inspircd import InspIRCd


def wire_line(
    source: str | None, command: str, *params: str, tags: dict[str, str] | None = None
) -> bytes:
    """A wire line as a server sends it: optional tags, ``:source``, command, params."""
    body = build_line(command, *params)
    if source:
        body = f":{source} ".encode() + body
    if tags:
        tag_text = ";".join(f"{k}={escape_tag_value(v)}" if v else k for k, v in tags.items())
        body = f"@{tag_text} ".encode() + body
    return body


class LineRelay:
    """One client connection and its own connection to the InspIRCd; subclasses handle each
    line in :meth:`from_client` and :meth:`from_server` (default: pass it on)."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server

    def from_client(self, raw: bytes) -> None:
        self.server.write(raw)

    def from_server(self, raw: bytes) -> None:
        self.client.write(raw)

    async def run(self, client: asyncio.StreamReader, server: asyncio.StreamReader) -> None:
        pumps = [
            asyncio.ensure_future(self._pump(client, self.from_client)),
            asyncio.ensure_future(self._pump(server, self.from_server)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            self.close()

    def close(self) -> None:
        for writer in (self.client, self.server):
            writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, handle: Callable[[bytes], None]) -> None:
        with contextlib.suppress(ConnectionError):
            while raw := await reader.readline():
                handle(raw)


class LineProxy:
    """Listens on 127.0.0.1 (a free port); give the bridge :attr:`host` and :attr:`port`.
    Subclasses make their relay in :meth:`make_relay`."""

    host = "127.0.0.1"

    def __init__(self, ircd: InspIRCd) -> None:
        self.ircd = ircd
        self.port = 0
        self._server: asyncio.Server | None = None
        self._relays: set[LineRelay] = set()

    def make_relay(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> LineRelay:
        return LineRelay(client, server)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def drop_clients(self) -> None:
        """Cut every relayed connection at once, as a network failure would."""
        for relay in list(self._relays):
            relay.close()

    async def close(self) -> None:
        self.drop_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> LineProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.ircd.host, self.ircd.port)
        except OSError:
            writer.close()
            return
        relay = self.make_relay(writer, up_writer)
        self._relays.add(relay)
        try:
            await relay.run(reader, up_reader)
        finally:
            self._relays.discard(relay)
