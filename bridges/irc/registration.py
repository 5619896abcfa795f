"""Registering a connection: CAP negotiation, SASL PLAIN, nick collisions, the welcome.

Mixed into :class:`~bridges.irc.client.IRCConnection`, whose ``handle_line`` hands these
methods the lines of the handshake. Kept apart because it is the one part of a connection's
life with its own little state machine (``CAP LS`` -> ``REQ`` -> ``ACK``/``NAK`` ->
``AUTHENTICATE`` -> ``CAP END``; ``433`` -> the next nick variant).
"""

from __future__ import annotations

import base64
import itertools
from typing import TYPE_CHECKING

from .lines import Message, build_line
from .names import InvalidNameError, nick_variants, sanitize_nick

if TYPE_CHECKING:
    from .client import IRCConnection

#: Capabilities used when the server offers them.
WANTED_CAPS = (
    "server-time",
    "message-tags",
    "echo-message",
    "multi-prefix",
    "draft/chathistory",
    "batch",
    "account-tag",
    "cap-notify",
)


class RegistrationMixin:
    """The handshake half of :class:`~bridges.irc.client.IRCConnection`."""

    def _on_welcome_done(self: IRCConnection) -> None:
        if self.ready.is_set():
            return
        self._offered = {}  # only needed during negotiation: 10,000 connections add up
        for line in self.on_ready_lines():
            self.write(line)
        self.ready.set()
        self.on_state("connected", "")
        self.on_registered()

    def _next_nick(self: IRCConnection, code: str) -> None:
        if self._variants is None:
            base = self.wanted_nick
            try:
                if code == "432":
                    base = sanitize_nick(base, self.isupport.nicklen)
                first = [base] if base != self.nick else []
                self._variants = itertools.chain(first, nick_variants(base, self.isupport.nicklen))
            except InvalidNameError:
                self._variants = nick_variants("matrixuser", self.isupport.nicklen)
        try:
            self.nick = next(self._variants)
        except StopIteration:
            self._close("No usable nick")
            return
        self.write(build_line("NICK", self.nick))

    def _on_cap(self: IRCConnection, msg: Message) -> None:
        sub = (msg.param(1) or "").upper()
        if sub in ("LS", "NEW"):
            more = msg.param(2) == "*" and len(msg.params) > 3
            for token in (msg.trailing or "").split():
                name, _, value = token.partition("=")
                self._offered[name] = value
            if more:
                return
            wanted = [c for c in WANTED_CAPS if c in self._offered and c not in self.caps]
            if self.sasl and "sasl" in self._offered and sub == "LS":
                mechs = self._offered["sasl"]
                if not mechs or "PLAIN" in mechs.upper().split(","):
                    wanted.append("sasl")
            if wanted:
                self.write(build_line("CAP", "REQ", " ".join(wanted)))
            elif sub == "LS":
                self._cap_end()
        elif sub == "ACK":
            acked = {c.lstrip("-=~") for c in (msg.trailing or "").split() if not c.startswith("-")}
            self.caps |= acked
            if "sasl" in acked and self.sasl and not self.registered:
                self.write(build_line("AUTHENTICATE", "PLAIN"))
            elif not self.registered:
                self._cap_end()
        elif sub == "NAK":
            if not self.registered:
                self._cap_end()
        elif sub == "DEL":
            for c in (msg.trailing or "").split():
                self.caps.discard(c)

    def _on_authenticate(self: IRCConnection, msg: Message) -> None:
        if msg.param(0) != "+" or not self.sasl:
            return
        account, password = self.sasl
        payload = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()
        for i in range(0, len(payload), 400):
            self.write(build_line("AUTHENTICATE", payload[i : i + 400]))
        if len(payload) % 400 == 0:
            self.write(build_line("AUTHENTICATE", "+"))

    def _cap_end(self: IRCConnection) -> None:
        if not self.registered:
            self.write(build_line("CAP", "END"))
