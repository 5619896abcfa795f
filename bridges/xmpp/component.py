"""The one XEP-0114 component connection that serves every bridged user.

:class:`GatewayComponent` is a slixmpp ``ComponentXMPP`` with:

* the XEP plugins the gateway speaks loaded (stanza classes and their events),
* reconnection with capped exponential backoff and jitter: after a lost session and after a
  refused connection; a refused handshake (a wrong secret) is reported as bad credentials and
  retried only every ``auth_retry_delay`` seconds, since retrying sooner cannot fix a secret,
* a last line of defence against invalid XML: whatever is about to be written has the
  characters XML 1.0 forbids removed, so no stanza can ever break the stream,
* an ``online`` event that senders wait on while the server is away.

Stanzas are handed to the connector's callbacks synchronously, in the order they arrive; the
connector queues them per chat (see ``inbound.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from slixmpp import ComponentXMPP, Iq, Message, Presence
from slixmpp.plugins.xep_0045 import stanza as muc_stanza
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from . import identity  # noqa: F401 - registers the bridgekit_identity plugin
from .jid import INVALID_XML_RE

log = logging.getLogger("bridgekit.xmpp.component")

#: Plugins loaded on the component, with their config. Most only register stanza classes.
PLUGINS: dict[str, dict[str, Any]] = {
    "xep_0004": {},
    "xep_0030": {},  # service discovery (our identities are answered by bridgekit_identity)
    "xep_0054": {},  # vcard-temp
    "xep_0059": {},  # result set management (MAM paging)
    "xep_0066": {},  # out-of-band data (file links)
    "xep_0071": {},  # XHTML-IM
    "xep_0082": {},
    "xep_0085": {},  # chat states
    "xep_0184": {"auto_ack": False, "auto_request": False},  # receipts: acked once stored
    "xep_0199": {"keepalive": False},  # answer pings
    "xep_0203": {},  # delayed delivery
    "xep_0297": {},  # forwarded (MAM results)
    "xep_0308": {},  # last message correction
    "xep_0313": {},  # message archive management
    "xep_0333": {},  # chat markers
    "xep_0334": {},  # processing hints
    "xep_0359": {},  # origin-id / stanza-id
    "xep_0421": {},  # occupant-id
    "xep_0424": {},  # retraction
    "xep_0428": {},  # fallback indication
    "xep_0444": {},  # reactions
    "xep_0461": {},  # replies
}


#: Stream handlers kept as they are (see :meth:`GatewayComponent._prune_handlers`).
_KEEP_HANDLERS = frozenset({"Handshake", "Stream Error", "bridgekit message", "bridgekit presence"})


class _OnlyTag:
    """A matcher that tries ``inner`` only on stanzas with ``tag`` (a cheap string test)."""

    def __init__(self, tag: str, inner: Any) -> None:
        self.tag = tag
        self.inner = inner

    def match(self, xml: Any) -> bool:
        return xml.xml.tag == self.tag and self.inner.match(xml)


#: Stream errors during the handshake that mean the bridge's credentials are wrong.
REFUSED_HANDSHAKE = {"not-authorized", "host-unknown"}


class GatewayComponent(ComponentXMPP):
    def __init__(
        self,
        jid: str,
        secret: str,
        host: str,
        port: int,
        *,
        max_delay: float = 30,
        auth_retry_delay: float = 60,
        on_message: Callable[[Message], None],
        on_presence: Callable[[Presence], None],
        on_online: Callable[[], None],
        on_offline: Callable[[str], None],
    ) -> None:
        super().__init__(jid, secret, host, port)
        self.max_delay = max_delay
        self.auth_retry_delay = auth_retry_delay
        #: The server refused our handshake (not-authorized): the secret or the JID is wrong.
        self.auth_failed = False
        self.online = asyncio.Event()
        self.was_online = False
        self.failures = 0
        self.last_error = ""
        self._stopping = False
        #: Set by :meth:`stop`: nothing will connect again, so nothing waits for it.
        self.stopped = asyncio.Event()
        self._retry: asyncio.TimerHandle | None = None
        self._on_online = on_online
        self._on_offline = on_offline
        muc_stanza.register_plugins()
        for name, config in PLUGINS.items():
            self.register_plugin(name, dict(config))
        self.register_plugin("bridgekit_identity")
        self.add_event_handler("session_start", self._session_start)
        self.add_event_handler("disconnected", self._disconnected)
        self.add_event_handler("connection_failed", self._connection_failed)
        self.add_event_handler("stream_error", self._stream_error)
        # Every message and presence, in arrival order (slixmpp's "message" event only fires
        # for messages with a body; reactions, retractions and chat states have none).
        ns = self.default_ns
        self.register_handler(
            Callback("bridgekit message", MatchXPath(f"{{{ns}}}message"), on_message)
        )
        self.register_handler(
            Callback("bridgekit presence", MatchXPath(f"{{{ns}}}presence"), on_presence)
        )
        self._prune_handlers()

    def _prune_handlers(self) -> None:
        """Drop the plugins' message and presence handlers; make the iq ones skip other stanzas.

        slixmpp matches every stanza against every handler, and the plugins register ~30 (MUC,
        markers, receipts, pubsub...) that only fire events nobody here listens to: the two
        callbacks above get every message and presence. Measured in process, slixmpp's work
        per received groupchat message went from ~220 us to ~50 us. The iq handlers (disco,
        vCard, ping, ad-hoc) stay, behind a cheap tag test.
        """
        iq_tag = f"{{{self.default_ns}}}iq"
        handlers = self._XMLStream__handlers  # type: ignore[attr-defined]
        kept = []
        for handler in handlers:
            criteria = getattr(handler._matcher, "_criteria", None)
            if handler.name in _KEEP_HANDLERS:
                kept.append(handler)
            elif isinstance(criteria, list) and str(criteria[0]).startswith("iq"):
                handler._matcher = _OnlyTag(iq_tag, handler._matcher)
                kept.append(handler)
        handlers[:] = kept

    # -- connection lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._connect()

    def _connect(self) -> None:
        self._retry = None
        if self._stopping:
            return
        log.info("Connecting to %s:%s as %s", self.server_host, self.server_port, self.boundjid)
        self.connect()

    async def stop(self) -> None:
        self._stopping = True
        self.stopped.set()
        if self._retry is not None:
            self._retry.cancel()
        self.cancel_connection_attempt()
        if self.transport is not None:
            self.online.clear()
            try:
                await asyncio.wait_for(self.disconnect(wait=2.0), 5)
            except Exception:
                self.abort()

    def _backoff(self) -> float:
        self.failures += 1
        if self.auth_failed:
            return self.auth_retry_delay * random.uniform(1.0, 1.2)
        base = min(self.max_delay, 0.5 * 2 ** min(self.failures - 1, 10))
        return base * random.uniform(0.8, 1.2)

    def _schedule(self) -> None:
        if self._stopping or self._retry is not None:
            return
        delay = self._backoff()
        log.info("Reconnecting to the XMPP server in %.1f s", delay)
        self._retry = asyncio.get_running_loop().call_later(delay, self._connect)

    def reschedule_connection_attempt(self) -> asyncio.Future | None:  # type: ignore[override]
        # slixmpp's own retry loop backs off up to 300 s; ours is capped by the config.
        self.cancel_connection_attempt()
        self._schedule()
        return None

    def _session_start(self, _: Any) -> None:
        self.failures = 0
        self.last_error = ""
        self.auth_failed = False
        self.was_online = True
        self.online.set()
        log.info("Component %s connected", self.boundjid)
        self._on_online()

    def _connection_failed(self, error: Any) -> None:
        self.last_error = f"cannot connect to {self.server_host}:{self.server_port}: {error}"
        log.warning("XMPP %s", self.last_error)

    def _stream_error(self, error: Any) -> None:
        condition = error["condition"] if hasattr(error, "__getitem__") else str(error)
        if condition in REFUSED_HANDSHAKE and not self.online.is_set():
            # Wrong secret (not-authorized) or a component JID the server does not serve
            # (host-unknown): only the configuration can fix it.
            self.auth_failed = True
            self.last_error = (
                f"the XMPP server refused the component handshake ({condition}): check "
                "component_jid and component_secret"
            )
        else:
            self.last_error = f"stream error from the server: {condition}"
        log.error("XMPP %s", self.last_error)

    def _disconnected(self, reason: Any) -> None:
        was_online = self.online.is_set()
        self.online.clear()
        if was_online:
            log.warning("Component disconnected: %s", reason)
            self._on_offline(self.last_error or f"disconnected: {reason or 'connection lost'}")
        elif self.last_error:
            self._on_offline(self.last_error)
        self._schedule()

    async def wait_online(self, timeout: float) -> bool:
        """Whether the server is there, waiting up to ``timeout`` for it; at once False once
        stopped (a sender would otherwise hold the bridge's stop for as long)."""
        if self.online.is_set():
            return True
        if self.stopped.is_set():
            return False
        waits = {
            asyncio.ensure_future(self.online.wait()),
            asyncio.ensure_future(self.stopped.wait()),
        }
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self.online.is_set()

    # -- sending ----------------------------------------------------------------------------

    def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, str) and INVALID_XML_RE.search(data):
            log.warning("Removed characters XML cannot carry from an outgoing stanza")
            data = INVALID_XML_RE.sub("", data)
        super().send_raw(data)

    async def query(self, iq: Iq, timeout: float = 10) -> Iq:
        """Send an iq get/set and return the result (raises IqError / IqTimeout)."""
        return await iq.send(timeout=timeout)
