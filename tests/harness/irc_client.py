"""A deliberately dumb raw IRC client for driving a real server from tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType

from bridges.irc.lines import Message, ParseError, build_line, parse_line
from bridges.irc.names import casefold

__all__ = ["IrcTestClient"]


class IrcTestClient:
    """A deliberately dumb asyncio IRC client for driving a server from tests.

    Every received message is kept; :meth:`wait_for` consumes the first one
    matching a predicate, so messages that arrive before a test starts waiting
    are never lost.  PINGs are answered automatically.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.nick: str | None = None
        self.caps: set[str] = set()
        self.history: list[Message] = []
        self._pending: list[Message] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._changed: asyncio.Condition | None = None
        self._closed = False

    @classmethod
    @contextlib.asynccontextmanager
    async def connected(
        cls, host: str, port: int, nick: str, caps: Iterable[str] = ()
    ) -> AsyncIterator[IrcTestClient]:
        """``async with IrcTestClient.connected(...) as client:`` — registered, closed after."""
        client = cls(host, port)
        await client.connect(nick, caps=caps)
        try:
            yield client
        finally:
            await client.close()

    async def connect(
        self,
        nick: str,
        *,
        user: str | None = None,
        realname: str | None = None,
        caps: Iterable[str] = (),
        timeout: float = 10.0,  # noqa: ASYNC109 - the harness API takes explicit timeouts
        password: str | None = None,
    ) -> Message:
        """Connect and register (``PASS password`` first if given); optionally negotiate
        ``caps`` first. Returns RPL_WELCOME."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._changed = asyncio.Condition()
        self._reader_task = asyncio.create_task(self._read_loop())
        wanted = list(caps)
        if wanted:
            await self.send("CAP LS 302")
        if password is not None:
            await self.send_line("PASS", password)
        self.nick = nick
        await self.send_line("NICK", nick)
        await self.send_line("USER", user or nick.lower(), "0", "*", realname or nick)
        if wanted:
            await self.wait_for(
                lambda m: m.command == "CAP" and m.param(1) == "LS" and m.param(2) != "*",
                timeout,
            )
            await self._request(wanted, timeout)
            await self.send("CAP END")
        welcome = await self.wait_for(
            lambda m: m.command in ("001", "432", "433", "ERROR"), timeout
        )
        if welcome.command != "001":
            raise ConnectionError(f"registration failed: {welcome.command} {welcome.params}")
        return welcome

    async def request_caps(self, caps: Iterable[str], timeout: float = 5.0) -> set[str]:  # noqa: ASYNC109 - the harness API takes explicit timeouts
        """Request capabilities (after registration too); returns the acknowledged ones."""
        return await self._request(list(caps), timeout)

    async def _request(self, caps: list[str], timeout: float) -> set[str]:  # noqa: ASYNC109 - the harness API takes explicit timeouts
        await self.send_line("CAP", "REQ", " ".join(caps))
        reply = await self.wait_for(
            lambda m: m.command == "CAP" and m.param(1) in ("ACK", "NAK"), timeout
        )
        if reply.param(1) == "NAK":
            return set()
        acked = {cap.lstrip("-=~") for cap in (reply.trailing or "").split()}
        self.caps |= acked
        return acked

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._changed is not None
        try:
            while True:
                raw = await self._reader.readline()
                if not raw:
                    break
                try:
                    message = parse_line(raw)
                except ParseError:
                    continue
                if message.command == "PING":
                    await self.send_line("PONG", *message.params[:1])
                self.history.append(message)
                async with self._changed:
                    self._pending.append(message)
                    self._changed.notify_all()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._closed = True
            async with self._changed:
                self._changed.notify_all()

    async def send(self, line: str) -> None:
        """Send one raw line (CRLF added). Refuses embedded CR/LF to keep tests honest."""
        if "\r" in line or "\n" in line:
            raise ValueError("send() takes a single line; use send_raw() for raw bytes")
        await self.send_raw(line.encode("utf-8") + b"\r\n")

    async def send_line(self, command: str, *params: str) -> None:
        """Send a line built with :func:`build_line`."""
        await self.send_raw(build_line(command, *params))

    async def send_line_tagged(self, tags: dict[str, str], command: str, *params: str) -> None:
        """Send a line with IRCv3 message tags (``+typing``, ``+draft/react``...)."""
        await self.send_raw(build_line(command, *params, tags=tags))

    async def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given (for adversarial tests)."""
        if self._writer is None:
            raise ConnectionError("not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:  # noqa: ASYNC109 - the harness API takes explicit timeouts
        """Consume and return the first received message matching ``predicate``."""
        assert self._changed is not None, "connect() first"

        def take() -> Message | None:
            for index, message in enumerate(self._pending):
                if predicate(message):
                    return self._pending.pop(index)
            return None

        async def wait() -> Message:
            assert self._changed is not None
            async with self._changed:
                while True:
                    found = take()
                    if found is not None:
                        return found
                    if self._closed:
                        raise ConnectionError("connection closed before a matching message")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            recent = [f"{m.command} {m.params}" for m in self.history[-10:]]
            raise TimeoutError(f"no matching message within {timeout}s; last: {recent}") from None

    async def join(self, channel: str, timeout: float = 5.0) -> Message:  # noqa: ASYNC109 - the harness API takes explicit timeouts
        """Join ``channel`` and wait for the end of NAMES (366); raises on join errors."""
        folded = casefold(channel)
        errors = {"403", "405", "471", "473", "474", "475", "476", "477", "479"}
        await self.send_line("JOIN", channel)
        reply = await self.wait_for(
            lambda m: (
                (m.command == "366" or m.command in errors) and casefold(m.param(1) or "") == folded
            ),
            timeout,
        )
        if reply.command != "366":
            raise ConnectionError(f"cannot join {channel}: {reply.command} {reply.params}")
        return reply

    async def privmsg(self, target: str, text: str) -> None:
        await self.send_line("PRIVMSG", target, text)

    async def close(self, message: str = "bye") -> None:
        """Send QUIT and close the connection; safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(build_line("QUIT", message))
                await writer.drain()
            writer.close()
            with contextlib.suppress(OSError, RuntimeError):
                await writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
            self._reader_task = None

    async def __aenter__(self) -> IrcTestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
