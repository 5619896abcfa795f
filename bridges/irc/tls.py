"""TLS for IRC connections: the stdlib's ``ssl.SSLObject`` over memory BIOs, on a plain TCP
transport.

Why not ``loop.create_connection(ssl=...)``: its TLS transport costs memory per connection
that a bridge with thousands of puppets feels. On the benchmark machine an idle TLS
connection took 288 KiB with asyncio's transport (a 256 KiB read buffer each) and 35.8 KiB
with uvloop's, against 27.8 KiB for an ``SSLObject`` fed by the protocol itself. Driving it
here also makes the same code run under both event loops (the tests run on asyncio, the
bridge on uvloop), and keeps read pauses (``read_batch``) plain TCP pauses: whatever
ciphertext has arrived is decrypted and handled in the same call.

The TLS work itself (handshake, certificate and host name checks, records) is OpenSSL's,
through :mod:`ssl`; this module only moves bytes between the socket and the ``SSLObject``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from functools import lru_cache

log = logging.getLogger("bridgekit.irc.tls")

#: Largest plaintext read from the SSLObject at once (one TLS record holds at most 16 KiB).
_READ = 65536


@lru_cache(maxsize=32)
def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The TLS context for a server's settings, made once and shared by all its connections.

    Each new context loads the whole CA store: ~0.8 MiB and ~40 ms of CPU here, which
    10,000 puppets (and every reconnect) would otherwise pay one by one.
    """
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TLSSession:
    """One client-side TLS session over a transport that carries its ciphertext.

    :attr:`handshake` resolves once the server is verified (or fails with the reason, e.g.
    ``SSLCertVerificationError``). :meth:`feed` takes ciphertext and returns plaintext;
    :meth:`write` takes plaintext. An error after the handshake closes the transport.
    """

    __slots__ = ("obj", "incoming", "outgoing", "transport", "handshake")

    def __init__(self, ctx: ssl.SSLContext, server_hostname: str) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self, transport: asyncio.Transport) -> None:
        """The TCP connection is up: send the ClientHello."""
        self.transport = transport
        self._shake()

    def feed(self, data: bytes) -> bytes:
        """Ciphertext from the socket in; whatever plaintext it completes out (may be b"")."""
        self.incoming.write(data)
        if not self.handshake.done():
            self._shake()
            if not self.handshake.done() or self.handshake.exception() is not None:
                return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self.obj.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the server's close_notify
                self._close()
                break
            except ssl.SSLError as e:
                log.info("TLS error from the server: %s", e)
                self._close()
                break
            if not chunk:
                break
            chunks.append(chunk)
        self._flush()  # reading can produce records to send (a key update)
        return b"".join(chunks)

    def write(self, data: bytes) -> None:
        try:
            self.obj.write(data)
        except ssl.SSLError as e:  # renegotiation is refused by TLS 1.3 and by this client
            log.info("TLS error while writing: %s", e)
            self._close()
            return
        self._flush()

    def lost(self) -> None:
        """The TCP connection is gone: a handshake still in progress fails."""
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed during the TLS handshake"))
            self.handshake.exception()  # retrieved: the waiter may have given up already

    def _shake(self) -> None:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass  # the server's next flight is needed
        except ssl.SSLError as e:
            self._flush()  # the alert, so the server knows why
            self.handshake.set_exception(e)
            self.handshake.exception()
            self._close()
            return
        else:
            self.handshake.set_result(None)
        self._flush()

    def _flush(self) -> None:
        out = self.outgoing.read()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
