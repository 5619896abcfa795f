"""A test-only IRC proxy that gives the tests' real InspIRCd the IRCv3 ``draft/chathistory``.

Why it exists: the IRC connector catches up after downtime with ``CHATHISTORY AFTER <target>
msgid=<last bridged msgid> <limit>``, and no ircd packaged in Debian offers that (InspIRCd 3 has
no chathistory module). So the bridge connects to this proxy, which relays every line to and
from the real InspIRCd and adds what a server with chathistory would add:

* ``CAP LS`` from the server gains ``draft/chathistory``, and ``batch`` too: the tests' InspIRCd
  does not load ``ircv3_batch``, and the only batches a client sees here are the proxy's own, so
  the proxy negotiates that cap itself (it leaves ``batch`` to the server if the server offers it).
* ``CAP REQ`` is atomic: the proxy's caps are taken out of a client's request before it is
  forwarded and put back into the server's ``ACK`` or ``NAK``; a request for nothing else is
  acknowledged by the proxy itself.
* After the first ``005`` comes one more: ``CHATHISTORY=100 MSGREFTYPES=msgid``, as the spec
  requires (the connector itself does not read it: it never asks for more than 100).
* ``CHATHISTORY`` is answered by the proxy from its history keeper, after a ``PING`` round trip
  to the server, so that the answer comes after the server's replies to the client's earlier
  commands (the ``JOIN`` sent just before it), as on a real server.

The history keeper is a client of the proxy's own on the InspIRCd, with ``message-tags`` and
``server-time``, in the channels a test names (:meth:`HistoryProxy.keep_history`): it logs every
``PRIVMSG``/``NOTICE`` there with its tags, as a server keeps history while the bridge is away.
InspIRCd's ``ircv3_msgid`` gives each message one msgid that every recipient sees (and the
sender's echo too), so the keeper's msgids are the ones the bridge bridged. The keeper is a
visible channel member (a real server's history has no such user).

Supported: ``CHATHISTORY AFTER <target> msgid=<id> <limit>``, answered with
``BATCH +ref chathistory <target>``, the lines after ``<id>`` (at most ``<limit>``, oldest first,
each with its original ``:nick!user@host`` source and ``time``/``msgid`` tags plus ``batch``) and
``BATCH -ref``. An unknown msgid gets an empty batch (the spec: a batch is always returned, empty
when there is nothing to return). Other subcommands get ``FAIL CHATHISTORY UNKNOWN_COMMAND``,
other references (``timestamp=``, ``*``) or a bad limit ``FAIL CHATHISTORY INVALID_PARAMS``.
Not done: access checks (any client reads any kept channel), ``CAP LIST``/``NEW``/``DEL``
rewriting, and plain lines for clients that did not negotiate ``batch``.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import deque
from dataclasses import dataclass

from bridges.irc.lines import Message, ParseError, build_line, parse_line
from bridges.irc.names import casefold
from tests.harness.inspircd import InspIRCd, IrcTestClient
from tests.irc.line_proxy import LineProxy, LineRelay, wire_line

#: The caps this proxy offers on the server's behalf (``batch`` only where the server lacks it).
PROXY_CAPS = ("draft/chathistory", "batch")
#: CHATHISTORY ISUPPORT: the most lines one request returns.
MAX_LIMIT = 100
_PING_PREFIX = "bridgekit-chathistory-"


@dataclass(frozen=True)
class HistoryRequest:
    """One ``CHATHISTORY AFTER`` the proxy answered: which target, after which msgid, how many
    lines it sent back."""

    target: str
    after: str
    sent: int


class HistoryProxy(LineProxy):
    """Listens on 127.0.0.1 (a free port); give the bridge :attr:`host` and :attr:`port`."""

    def __init__(self, ircd: InspIRCd) -> None:
        super().__init__(ircd)
        #: Every CHATHISTORY AFTER answered, in order (for asserting what the bridge asked).
        self.requests: list[HistoryRequest] = []
        self._keeper = IrcTestClient(ircd.host, ircd.port)
        self._refs = itertools.count(1)

    def make_relay(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> _Relay:
        return _Relay(self, client, server)

    async def start(self) -> None:
        await self._keeper.connect(
            f"hist{secrets.token_hex(3)}", caps=["message-tags", "server-time"]
        )
        await super().start()

    async def keep_history(self, *channels: str) -> None:
        """The keeper joins ``channels``: from now on what is said there can be fetched."""
        for channel in channels:
            await self._keeper.join(channel)

    def history(self, target: str) -> list[Message]:
        """What the keeper logged in ``target``, oldest first."""
        folded = casefold(target)
        return [
            m
            for m in self._keeper.history
            if m.command in ("PRIVMSG", "NOTICE") and casefold(m.param(0) or "") == folded
        ]

    def after(self, target: str, msgid: str, limit: int) -> list[Message] | None:
        """Up to ``limit`` lines after ``msgid`` in ``target``; None if that msgid is unknown."""
        log = self.history(target)
        for index, message in enumerate(log):
            if message.tags.get("msgid") == msgid:
                return log[index + 1 : index + 1 + limit]
        return None

    def next_ref(self) -> str:
        return f"hist{next(self._refs)}"

    async def close(self) -> None:
        await super().close()
        await self._keeper.close()


class _Relay(LineRelay):
    """One client connection and its own connection to the InspIRCd."""

    def __init__(
        self, proxy: HistoryProxy, client: asyncio.StreamWriter, server: asyncio.StreamWriter
    ) -> None:
        super().__init__(client, server)
        self.proxy = proxy
        self.nick = "*"
        self.offered: set[str] = set()  # caps the server offers
        #: For each CAP REQ forwarded, the proxy's caps taken out of it (ACK/NAK come in order).
        self.taken: deque[list[str]] = deque()
        #: PING token -> the CHATHISTORY command answered when its PONG comes back.
        self.waiting: dict[str, Message] = {}
        self.tokens = itertools.count(1)
        self.isupport_added = False

    @property
    def own_caps(self) -> set[str]:
        return {cap for cap in PROXY_CAPS if cap not in self.offered}

    # -- client -> server -------------------------------------------------------------------

    def from_client(self, raw: bytes) -> None:
        try:
            msg = parse_line(raw)
        except ParseError:
            self.server.write(raw)
            return
        if msg.command == "CAP" and (msg.param(0) or "").upper() == "REQ":
            self._cap_req(msg)
        elif msg.command == "CHATHISTORY":
            token = f"{_PING_PREFIX}{next(self.tokens)}"
            self.waiting[token] = msg
            self.server.write(build_line("PING", token))
        else:
            self.server.write(raw)

    def _cap_req(self, msg: Message) -> None:
        own = self.own_caps
        wanted = (msg.trailing or "").split()
        taken = [cap for cap in wanted if cap.lstrip("-") in own]
        rest = [cap for cap in wanted if cap not in taken]
        if rest:
            self.taken.append(taken)
            self.server.write(build_line("CAP", "REQ", " ".join(rest)))
        else:
            self.client.write(
                wire_line(self.proxy.ircd.server_name, "CAP", self.nick, "ACK", " ".join(taken))
            )

    # -- server -> client -------------------------------------------------------------------

    def from_server(self, raw: bytes) -> None:
        try:
            msg = parse_line(raw)
        except ParseError:
            self.client.write(raw)
            return
        sub = (msg.param(1) or "").upper()
        if msg.command == "CAP" and sub == "LS":
            self._cap_ls(msg, raw)
        elif msg.command == "CAP" and sub in ("ACK", "NAK") and self.taken:
            caps = (msg.trailing or "").split() + self.taken.popleft()
            self._write_as(msg, " ".join(caps))
        elif msg.command == "PONG" and msg.trailing in self.waiting:
            self._answer(self.waiting.pop(msg.trailing or ""))
        else:
            self.client.write(raw)
            if msg.command == "001":
                self.nick = msg.param(0) or self.nick
            elif msg.command == "005" and not self.isupport_added:
                self.isupport_added = True
                self.client.write(
                    wire_line(
                        msg.source,
                        "005",
                        self.nick,
                        f"CHATHISTORY={MAX_LIMIT}",
                        "MSGREFTYPES=msgid",
                        "are supported by this server",
                    )
                )

    def _cap_ls(self, msg: Message, raw: bytes) -> None:
        caps = (msg.trailing or "").split()
        self.offered |= {cap.partition("=")[0] for cap in caps}
        if msg.param(2) == "*" and len(msg.params) > 3:
            self.client.write(raw)  # more LS lines follow: the proxy's caps go on the last one
            return
        self._write_as(msg, " ".join(caps + sorted(self.own_caps)))

    def _write_as(self, msg: Message, trailing: str) -> None:
        """``msg`` again with a new last parameter."""
        self.client.write(
            wire_line(msg.source, msg.command, *msg.params[:-1], trailing, tags=msg.tags)
        )

    # -- CHATHISTORY --------------------------------------------------------------------------

    def _answer(self, cmd: Message) -> None:
        sub = (cmd.param(0) or "").upper()
        target, ref, limit = cmd.param(1) or "", cmd.param(2) or "", cmd.param(3) or ""
        if sub != "AFTER":
            self._fail("UNKNOWN_COMMAND", sub or "*", "Only AFTER is supported here")
        elif not target or not ref.startswith("msgid=") or not limit.isdigit():
            self._fail("INVALID_PARAMS", sub, "Use AFTER <target> msgid=<id> <limit>")
        else:
            msgid = ref.removeprefix("msgid=")
            # An unknown msgid gets an empty batch: there is nothing to return after it.
            found = self.proxy.after(target, msgid, min(int(limit), MAX_LIMIT)) or []
            self._batch(target, found)
            self.proxy.requests.append(HistoryRequest(target, msgid, len(found)))

    def _batch(self, target: str, found: list[Message]) -> None:
        server, ref = self.proxy.ircd.server_name, self.proxy.next_ref()
        lines = [wire_line(server, "BATCH", f"+{ref}", "chathistory", target)]
        for m in found:
            lines.append(wire_line(m.source, m.command, *m.params, tags={"batch": ref, **m.tags}))
        lines.append(wire_line(server, "BATCH", f"-{ref}"))
        self.client.write(b"".join(lines))

    def _fail(self, code: str, *context: str) -> None:
        self.client.write(
            wire_line(self.proxy.ircd.server_name, "FAIL", "CHATHISTORY", code, *context)
        )
