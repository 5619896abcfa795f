"""Socket Mode: a workspace's events over slack-sdk's websocket client.

Envelopes are handled one at a time in the order they came (slack-sdk runs each listener
call in a task of its own: two messages said in a row could otherwise be queued swapped),
and each is acknowledged only once its events are stored (``queue_remote_event`` returns
then): an envelope whose handling failed is not acknowledged, so Slack delivers it again
(after its ack timeout, or on the next connection, with ``retry_attempt`` > 0). Redeliveries
and the same event reaching two app logins of one workspace are recognised by event id
(:meth:`~.connector.SlackConnector.receive`). A malformed envelope (:mod:`.envelopes`) is
logged and acknowledged (Slack would otherwise resend it), never raised.

slack-sdk reconnects by itself (dropped socket, ``disconnect`` frame); a lost connection is
reported as a transient disconnect until the next ``hello`` (then CONNECTED again, which
makes the runtime catch up on what was missed). When its ``apps.connections.open`` says the
app-level token is dead, the login's :class:`~.credentials.TokenWatch` stops the client (it
would retry forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.socket_mode.aiohttp import SocketModeClient

from .api import web_client
from .credentials import APP_TOKEN, TokenWatch
from .envelopes import payload_problem

if TYPE_CHECKING:
    from .client import SlackClient

log = logging.getLogger("bridgekit.slack.socket")

#: Errors a handler raises when the envelope itself makes no sense: acknowledged, not retried.
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError)


#: Seconds a Socket Mode URL is used after ``apps.connections.open`` gave it.
URL_FRESH = 3.0


class _SocketModeClient(SocketModeClient):
    """slack-sdk's client, telling when it starts reconnecting on its own (a dropped or stale
    connection; not the ``disconnect`` refresh Slack asks for, which is planned), and never
    retrying a spent URL: its ``connect()`` retries a failed handshake with the same URL
    every few seconds forever (and would never learn that the token died meanwhile), but a
    URL is good for one connection. Here a URL older than :data:`URL_FRESH` reads as None,
    which makes that loop ask ``apps.connections.open`` for a new one."""

    on_lost: Callable[[], None] = staticmethod(lambda: None)
    _url: str | None = None
    _url_at = 0.0

    @property  # type: ignore[override]
    def wss_uri(self) -> str | None:
        if self._url is not None and time.monotonic() - self._url_at > URL_FRESH:
            self._url = None
        return self._url

    @wss_uri.setter
    def wss_uri(self, value: str | None) -> None:
        self._url, self._url_at = value, time.monotonic()

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        if not force and not self.closed:
            self.on_lost()
        await super().connect_to_new_endpoint(force)


class SocketReceiver:
    def __init__(self, client: SlackClient) -> None:
        self.client = client
        self.sm: SocketModeClient | None = None
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        #: The first connection is made (later ones are slack-sdk's reconnects).
        self.started = False

    async def start(self) -> None:
        """Connect (slack-sdk retries a failed connection itself, until :meth:`halt`)."""
        connector = self.client.connector
        watch = TokenWatch(APP_TOKEN, self.client.token_refused)
        self.sm = _SocketModeClient(
            app_token=self.client.meta.app_token,
            web_client=web_client(connector.config, None, watch=watch),
            logger=logging.getLogger("bridgekit.slack.sdk"),
        )
        self.sm.on_lost = self.client.socket_lost
        self.sm.message_listeners.append(self._on_message)
        self._worker = asyncio.get_running_loop().create_task(self._work())
        await self.sm.connect()
        self.started = True

    def halt(self) -> None:
        """Stop every reconnect attempt now (synchronous: from inside the SDK's loops)."""
        if self.sm is not None:
            self.sm.closed = True
            self.sm.auto_reconnect_enabled = False

    async def stop(self) -> None:
        self.halt()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        for task in list(self._handling):  # not acked: Slack delivers them again
            task.cancel()
        if self.sm is not None:
            sm, self.sm = self.sm, None
            try:
                await sm.close()
            except Exception as e:  # noqa: BLE001 - closing a broken socket
                log.debug("closing Socket Mode: %s", e)

    async def _on_message(self, sm: SocketModeClient, message: Any, raw: str | None) -> None:
        # Called in a task per frame: only take the frame's place in line here.
        if not isinstance(message, dict):
            return
        if message.get("type") == "hello":
            self.client.socket_up()
            return
        if message.get("type") == "disconnect":
            return  # slack-sdk's business
        envelope_id = message.get("envelope_id")
        if not isinstance(envelope_id, str) or not envelope_id:
            log.warning("Skipping a Socket Mode frame without an envelope id")
            return
        self._queue.put_nowait(message)

    async def _work(self) -> None:
        """Start each envelope's handling in arrival order. Handling takes its conversation's
        turn before it first waits (``SlackConnector.receive``), so one conversation's events
        stay in order while a slow one (a file download) holds up no other conversation."""
        while True:
            message = await self._queue.get()
            task = asyncio.get_running_loop().create_task(self._one(message))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def _one(self, message: dict[str, Any]) -> None:
        try:
            if await self._handle(message):
                await self._ack(message["envelope_id"])
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next envelope must still flow
            log.exception("Socket Mode envelope %s", message.get("envelope_id"))

    async def _ack(self, envelope_id: str) -> None:
        if self.sm is None:
            return
        try:
            await self.sm.send_socket_mode_response({"envelope_id": envelope_id})
        except Exception as e:  # noqa: BLE001 - Slack will redeliver; dedupe catches it
            log.info("Could not acknowledge envelope %s: %s", envelope_id, e)

    async def _handle(self, message: dict[str, Any]) -> bool:
        """Handle one envelope; True if it may be acknowledged."""
        envelope_id = message["envelope_id"]
        if message.get("type") != "events_api":
            log.debug("Ignoring Socket Mode %s envelope", message.get("type"))
            return True
        payload = message.get("payload")
        problem = payload_problem(payload)
        if problem is not None:
            log.warning("Skipping malformed Socket Mode envelope %s: %s", envelope_id, problem)
            return True
        assert isinstance(payload, dict)
        connector = self.client.connector
        client = connector.app_for_payload(self.client, payload)
        if client is None:
            log.info("Envelope %s is for a workspace without an app login", envelope_id)
            return True
        try:
            await connector.receive(client, payload)
        except MALFORMED:
            log.exception("Skipping Socket Mode envelope %s that could not be read", envelope_id)
            return True
        except Exception as e:  # noqa: BLE001 - not stored: no ack, Slack delivers it again
            log.warning("Envelope %s not stored (%s): left for redelivery", envelope_id, e)
            return False
        return True
