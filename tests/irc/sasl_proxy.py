"""A test-only IRC proxy that gives the tests' real InspIRCd SASL PLAIN, the way a network with
services does.

Why it exists: InspIRCd's ``m_sasl`` only relays ``AUTHENTICATE`` to a services server over
the server protocol, and with no services linked it advertises a ``sasl`` cap that can never
succeed (so the harness does not load it). The bridge therefore connects to this proxy, which
relays every line to and from the real InspIRCd and plays the services' part of SASL:

* the last ``CAP LS`` line from the server gains ``sasl=PLAIN``;
* ``sasl`` is taken out of a client's ``CAP REQ`` and put back into the server's ``ACK`` or
  ``NAK`` (a request for ``sasl`` alone is acknowledged by the proxy);
* ``AUTHENTICATE PLAIN`` is answered with ``AUTHENTICATE +``; the client's base64 payload
  (in 400-byte chunks, ``+`` after an exact multiple, as the spec says) is checked against
  :attr:`SaslProxy.accounts`: ``900`` + ``903`` when it matches, ``904`` when it does not,
  ``908`` + ``904`` for another mechanism, ``906`` for ``AUTHENTICATE *``.

Every attempt is recorded in :attr:`SaslProxy.attempts` (account, password, accepted), so a
test can assert exactly what the bridge sent. ``CAP END``, ``NICK``, ``USER`` and the rest go to
the server unchanged, so registration itself is InspIRCd's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import deque
from dataclasses import dataclass

from bridges.irc.lines import Message, ParseError, parse_line
from tests.harness.inspircd import InspIRCd
from tests.irc.line_proxy import LineProxy, LineRelay, wire_line


@dataclass(frozen=True)
class SaslAttempt:
    """One PLAIN exchange: who the client said it was, the password, and the verdict."""

    account: str
    password: str
    accepted: bool


class SaslProxy(LineProxy):
    """Listens on 127.0.0.1 (a free port); give the bridge :attr:`host` and :attr:`port`."""

    def __init__(self, ircd: InspIRCd, accounts: dict[str, str]) -> None:
        super().__init__(ircd)
        #: account -> password the proxy accepts.
        self.accounts = accounts
        self.attempts: list[SaslAttempt] = []

    def make_relay(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> _SaslRelay:
        return _SaslRelay(self, client, server)


class _SaslRelay(LineRelay):
    """One client connection and its own connection to the InspIRCd."""

    def __init__(
        self, proxy: SaslProxy, client: asyncio.StreamWriter, server: asyncio.StreamWriter
    ) -> None:
        super().__init__(client, server)
        self.proxy = proxy
        self.nick = "*"
        #: For each CAP REQ forwarded: whether ``sasl`` was taken out of it.
        self.taken: deque[bool] = deque()
        self.mechanism: str | None = None
        self.payload = ""

    def _reply(self, command: str, *params: str) -> None:
        self.client.write(wire_line(self.proxy.ircd.server_name, command, self.nick, *params))

    # -- client -> server -------------------------------------------------------------------

    def from_client(self, raw: bytes) -> None:
        try:
            msg = parse_line(raw)
        except ParseError:
            self.server.write(raw)
            return
        if msg.command == "NICK" and msg.param(0):
            self.nick = msg.param(0) or self.nick
            self.server.write(raw)
        elif msg.command == "CAP" and (msg.param(0) or "").upper() == "REQ":
            wanted = (msg.trailing or "").split()
            rest = [cap for cap in wanted if cap != "sasl"]
            if rest:
                self.taken.append(len(rest) < len(wanted))
                self.server.write(wire_line(None, "CAP", "REQ", " ".join(rest)))
            else:
                self._reply("CAP", "ACK", "sasl")
        elif msg.command == "AUTHENTICATE":
            self._authenticate(msg.param(0) or "")
        else:
            self.server.write(raw)

    def _authenticate(self, data: str) -> None:
        if data == "*":
            self.mechanism, self.payload = None, ""
            self._reply("906", "SASL authentication aborted")
        elif self.mechanism is None:
            if data.upper() != "PLAIN":
                self._reply("908", "PLAIN", "are available SASL mechanisms")
                self._reply("904", "SASL authentication failed")
                return
            self.mechanism = "PLAIN"
            self.client.write(wire_line(None, "AUTHENTICATE", "+"))
        else:
            if data != "+":
                self.payload += data
            if len(data) == 400:
                return  # more chunks follow (or a "+")
            self._check(self.payload)
            self.mechanism, self.payload = None, ""

    def _check(self, payload: str) -> None:
        try:
            _authzid, account, password = base64.b64decode(payload, validate=True).split(b"\0")
            account_text, password_text = account.decode(), password.decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            self._reply("904", "SASL authentication failed")
            return
        accepted = self.proxy.accounts.get(account_text) == password_text
        self.proxy.attempts.append(SaslAttempt(account_text, password_text, accepted))
        if accepted:
            mask = f"{self.nick}!*@*"
            self._reply("900", mask, account_text, f"You are now logged in as {account_text}")
            self._reply("903", "SASL authentication successful")
        else:
            self._reply("904", "SASL authentication failed")

    # -- server -> client -------------------------------------------------------------------

    def from_server(self, raw: bytes) -> None:
        try:
            msg = parse_line(raw)
        except ParseError:
            self.client.write(raw)
            return
        sub = (msg.param(1) or "").upper()
        if (
            msg.command == "CAP"
            and sub == "LS"
            and not (msg.param(2) == "*" and len(msg.params) > 3)
        ):
            self._write_as(msg, f"{msg.trailing or ''} sasl=PLAIN".strip())
        elif msg.command == "CAP" and sub in ("ACK", "NAK") and self.taken:
            self._write_as(
                msg, f"{msg.trailing or ''} sasl" if self.taken.popleft() else msg.trailing or ""
            )
        else:
            if msg.command == "001":
                self.nick = msg.param(0) or self.nick
            self.client.write(raw)

    def _write_as(self, msg: Message, trailing: str) -> None:
        """``msg`` again with a new last parameter."""
        self.client.write(
            wire_line(msg.source, msg.command, *msg.params[:-1], trailing, tags=msg.tags)
        )
