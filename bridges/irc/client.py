"""One IRC connection: its lifecycle (connect, register, keepalive, reconnect with backoff)
and the lines it answers itself (the protocol in :mod:`bridges.irc.protocol`, the send queue
in :mod:`bridges.irc.send_queue`, registration, CAP and SASL in :mod:`bridges.irc.registration`).

This is a small protocol over :mod:`bridges.irc.lines` rather than the ``irc`` package's
``AioConnection``: every byte written goes through :func:`build_line` (the ``irc`` package
checks only for LF, not CR or NUL), writes are paced by a token bucket and survive reconnects,
and per connection it keeps a fraction of the state (see the README for the measurement).

The connection knows nothing about Matrix. It hands every parsed line to ``on_line`` and
calls ``on_registered`` / ``on_disconnected`` hooks; :class:`~bridges.irc.puppet.IRCClient`
builds the bridge on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import ServerConfig
from .lines import Message, build_line
from .names import casefold
from .pacing import StartPacer, TokenBucket
from .protocol import IRCProtocol
from .registration import RegistrationMixin
from .send_queue import SendItem, SendQueueMixin
from .tls import TLSSession, tls_context

log = logging.getLogger("bridgekit.irc.client")

KEEPALIVE = 90.0  # seconds of silence before we PING the server
KEEPALIVE_GRACE = 60.0  # seconds to answer it
REGISTER_TIMEOUT = 60.0
#: A server that has not finished the TLS handshake by then is not speaking TLS (a plain
#: port answers a ClientHello with silence until its registration timeout).
TLS_HANDSHAKE_TIMEOUT = 30.0


@dataclass
class ISupport:
    casemapping: str = "rfc1459"
    chantypes: str = "#&"
    prefix_modes: str = "ov"
    prefix_chars: str = "@+"
    nicklen: int = 30
    channellen: int = 64
    network: str = ""
    chanmodes: str = "b,k,l,imnpst"

    def load(self, tokens: list[str]) -> None:
        for token in tokens:
            key, _, value = token.partition("=")
            key = key.upper()
            if key == "CHANMODES":
                self.chanmodes = sys.intern(value)
            if key == "CASEMAPPING" and value.lower() in ("ascii", "rfc1459", "strict-rfc1459"):
                self.casemapping = value.lower()
            elif key == "CHANTYPES" and value:
                self.chantypes = value
            elif key == "PREFIX" and value.startswith("(") and ")" in value:
                modes, _, chars = value[1:].partition(")")
                if len(modes) == len(chars):
                    self.prefix_modes, self.prefix_chars = modes, chars
            elif key == "NICKLEN" and value.isdigit():
                self.nicklen = max(1, int(value))
            elif key == "CHANNELLEN" and value.isdigit():
                self.channellen = max(1, int(value))
            elif key == "NETWORK":
                self.network = value


class IRCConnection(RegistrationMixin, SendQueueMixin):
    """A self-healing connection to one server for one nick."""

    def __init__(
        self,
        server: ServerConfig,
        nick: str,
        *,
        on_line: Callable[[Message], None],
        on_registered: Callable[[], None],
        on_state: Callable[[str, str], None],
        semaphore: asyncio.Semaphore,
        start_pacer: StartPacer | None = None,
        password: str | None = None,
        sasl: tuple[str, str] | None = None,
        realname: str | None = None,
        label: str = "",
    ) -> None:
        self.server = server
        self.wanted_nick = nick
        self.nick = nick
        self._me: tuple[str, str, str] = ("", "", "")  # (nick, casemapping, folded nick)
        self.user: str | None = None
        self.host: str | None = None
        self.on_line = on_line
        self.on_registered = on_registered
        self.on_state = on_state
        #: Connections of the server in registration at once, and their start rate.
        self.semaphore = semaphore
        self.start_pacer = start_pacer
        self.password = password
        self.sasl = sasl
        self.realname = realname or server.realname
        self.label = label or nick
        self.isupport = ISupport()
        self.caps: set[str] = set()
        self._offered: dict[str, str] = {}
        #: True while lines we sent await their echo (no read pauses then: see IRCProtocol).
        self.awaiting: Callable[[], bool] = lambda: False
        #: True while another connection bridges everything this one hears (longer read
        #: pauses then: see IRCProtocol and ServerConfig.follower_read_batch).
        self.follower: Callable[[], bool] = lambda: False
        self.registered = False
        self.ready = asyncio.Event()
        self.last_rx = time.monotonic()
        #: The read pause of the stream being received (0: none), doubled while it goes on.
        self.read_pause = 0.0
        self.bucket = TokenBucket(server.send_rate, server.burst)
        self.queue: deque[SendItem] = deque()
        self._wake = asyncio.Event()
        self._proto: IRCProtocol | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._variants: Any = None
        self._stopping = False
        self.idle = False
        self.sasl_failed = False
        #: The last ERROR line's text from the server (why it is closing the link).
        self.server_error = ""
        self.attempt = 0
        #: Lines written before registration completes (JOINs queued by the owner...).
        self.on_ready_lines: Callable[[], list[bytes]] = lambda: []

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._proto is not None and self._proto.transport is not None

    def start(self) -> None:
        self._stopping = False
        self.idle = False
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=f"irc-{self.label}")
        self._wake.set()

    async def stop(self, message: str = "Bridge shutting down") -> None:
        self._stopping = True
        self._wake.set()
        self._close(message)
        for task in (self._runner, self._pump):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._runner = self._pump = None
        # Whoever waits for these lines is cancelled, not failed: the runtime keeps the
        # Matrix event pending and sends it again after the restart.
        for item in self.queue:
            if not item.done.done():
                item.done.cancel()
        self.queue.clear()

    def go_idle(self, message: str = "Idle") -> None:
        """Disconnect until something is queued again."""
        self.idle = True
        self._wake.clear()
        self._close(message)

    def reconnect(self, message: str = "Reconnecting") -> None:
        self.idle = False
        self.attempt = 0
        self._close(message)
        self._wake.set()
        self.start()

    def _close(self, message: str) -> None:
        proto = self._proto
        if proto is not None and proto.transport is not None:
            with contextlib.suppress(Exception):
                proto.write(build_line("QUIT", message))
            proto.transport.close()

    async def _run(self) -> None:
        while not self._stopping:
            if self.idle:
                await self._wake.wait()
                if self._stopping:
                    return
                self.idle = False
            failure = ""
            try:
                async with self.semaphore:
                    if self.start_pacer is not None:
                        await self.start_pacer.wait()
                    await self._connect_and_register()
                self.attempt = 0
                await self._lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.info("%s: connection to %s failed: %s", self.label, self.server.name, e)
                self._close("Registration failed")
                failure = f"connection failed: {str(e) or type(e).__name__}; "
            self._proto = None
            self.registered = False
            self.ready.clear()
            if self._stopping:
                return
            if self.idle:
                self.on_state("idle", "")
                continue
            self.attempt += 1
            delay = self.backoff_delay()
            self.on_state("disconnected", f"{failure}reconnecting in {delay:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forced_wake(), delay)

    async def _forced_wake(self) -> None:
        # `reconnect()` sets _wake while we sleep off a backoff: try again at once.
        self._wake.clear()
        await self._wake.wait()

    def backoff_delay(self) -> float:
        """Exponential backoff with full jitter around the nominal delay."""
        lo, hi = self.server.reconnect_min_delay, self.server.reconnect_max_delay
        nominal = min(hi, lo * (2 ** max(0, self.attempt - 1)))
        return nominal * random.uniform(0.5, 1.5)

    async def _connect_and_register(self) -> None:
        self.on_state("connecting", "")
        self._lost = asyncio.Event()
        self.caps.clear()
        self._offered.clear()
        self.isupport = ISupport()
        self.registered = False
        self.sasl_failed = False
        self.server_error = ""
        self._variants = None
        self.nick = self.wanted_nick
        loop = asyncio.get_running_loop()
        tls = None
        if self.server.tls:
            ctx = tls_context(self.server.tls_verify, self.server.tls_ca_file)
            tls = TLSSession(ctx, self.server.host)
        proto = IRCProtocol(self, tls)
        self._proto = proto
        await asyncio.wait_for(
            loop.create_connection(lambda: proto, self.server.host, self.server.port), 30
        )
        if tls is not None:
            try:
                await asyncio.wait_for(asyncio.shield(tls.handshake), TLS_HANDSHAKE_TIMEOUT)
            except TimeoutError:
                raise ConnectionError(
                    f"no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:g} s "
                    f"(is port {self.server.port} a TLS port?)"
                ) from None
        self.last_rx = time.monotonic()
        self.write(build_line("CAP", "LS", "302"))
        if self.password:
            self.write(build_line("PASS", self.password))
        self.write(build_line("NICK", self.nick))
        self.write(build_line("USER", self.server.username, "0", "*", self.realname))
        waiter = asyncio.ensure_future(self.ready.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait(
                {waiter, lost}, timeout=REGISTER_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            lost.cancel()
        if not self.ready.is_set():
            # The server's ERROR says why (a wrong server password, a ban, a full class).
            why = f": {self.server_error}" if self.server_error else ""
            raise ConnectionError(f"registration did not complete{why}")
        self._schedule_keepalive()

    def connection_lost(self, proto: IRCProtocol, exc: Exception | None) -> None:
        if proto is not self._proto:
            return
        log.info("%s: disconnected from %s (%s)", self.label, self.server.name, exc or "closed")
        proto.transport = None
        self.registered = False
        self.ready.clear()
        self._lost.set()

    def _schedule_keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        proto = self._proto

        def check() -> None:
            if proto is not self._proto or proto is None or proto.transport is None:
                return
            silent = time.monotonic() - self.last_rx
            if silent > KEEPALIVE + KEEPALIVE_GRACE:
                log.info("%s: ping timeout", self.label)
                proto.transport.close()
                return
            if silent > KEEPALIVE:
                self.write(build_line("PING", "bridgekit"))
            loop.call_later(KEEPALIVE / 3, check)

        loop.call_later(KEEPALIVE / 3, check)

    # -- reading ---------------------------------------------------------------------------

    def fold(self, name: str) -> str:
        return casefold(name, self.isupport.casemapping)

    def is_me(self, nick: str | None) -> bool:
        if nick is None:
            return False
        own = self.nick
        if nick == own:
            return True
        # Asked for every line a connection reads: fold our own nick once per nick/casemapping.
        cached = self._me
        casemapping = self.isupport.casemapping
        if cached[0] is not own or cached[1] is not casemapping:
            cached = self._me = (own, casemapping, casefold(own, casemapping))
        return casefold(nick, casemapping) == cached[2]

    def handle_line(self, msg: Message) -> None:
        cmd = msg.command
        if cmd == "PING":
            self.write(build_line("PONG", *msg.params[:1]))
            return
        if cmd == "CAP":
            self._on_cap(msg)
        elif cmd == "AUTHENTICATE":
            self._on_authenticate(msg)
        elif cmd in ("903", "907"):
            self._cap_end()
        elif cmd in ("902", "904", "905", "906", "908"):
            if cmd != "908":
                self.sasl_failed = True
                log.warning("%s: SASL failed on %s: %s", self.label, self.server.name, msg.params)
                self._cap_end()
        elif cmd == "001":
            self.nick = msg.param(0) or self.nick
            self.registered = True
        elif cmd == "005":
            self.isupport.load(msg.params[1:-1])
        elif cmd in ("376", "422"):  # end of MOTD / no MOTD: registration finished
            self._on_welcome_done()
        elif cmd in ("432", "433", "436", "437") and not self.registered:
            self._next_nick(cmd)
        elif cmd == "NICK" and self.is_me(msg.nick):
            self.nick = msg.param(0) or self.nick
        elif cmd == "JOIN" and self.is_me(msg.nick):
            self.user, self.host = msg.user, msg.host
        elif cmd == "396" and len(msg.params) >= 2:  # RPL_VISIBLEHOST
            self.host = msg.params[1]
        elif cmd == "ERROR":
            log.info("%s: server said ERROR %s", self.label, msg.params)
            self.server_error = (msg.trailing or "")[:300]
        self.on_line(msg)
