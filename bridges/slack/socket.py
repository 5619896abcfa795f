"""Socket Mode: a workspace's events over slack-sdk's websocket client.

An envelope is acknowledged only once its events are stored (``queue_remote_event`` returns
then): an envelope lost in a crash before that is redelivered by Slack. Redeliveries
(``retry_attempt`` > 0, or the same event on a new connection after a ``disconnect``) and the
same event reaching two app logins of one workspace are recognised by event id
(:class:`~.dedupe.SeenEvents`) and acknowledged without being handled twice. A malformed
envelope is logged and acknowledged (Slack would otherwise resend it forever), never raised.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from .api import web_client
from .history import watch_reconnects

if TYPE_CHECKING:
    from .client import SlackClient

log = logging.getLogger("bridgekit.slack.socket")


class SocketReceiver:
    def __init__(self, client: SlackClient) -> None:
        self.client = client
        self.sm: SocketModeClient | None = None

    async def start(self) -> None:
        connector = self.client.connector
        self.sm = SocketModeClient(
            app_token=self.client.meta.app_token,
            web_client=web_client(connector.config, None),
            logger=logging.getLogger("bridgekit.slack.sdk"),
        )
        self.sm.socket_mode_request_listeners.append(self._on_request)
        watch_reconnects(self.client, self.sm)  # a catch-up after each gap (history.py)
        await self.sm.connect()

    async def stop(self) -> None:
        if self.sm is not None:
            sm, self.sm = self.sm, None
            try:
                await sm.close()
            except Exception as e:  # noqa: BLE001 - closing a broken socket
                log.debug("closing Socket Mode: %s", e)

    async def _on_request(self, sm: SocketModeClient, req: SocketModeRequest) -> None:
        try:
            handled = await self._handle(req)
        except Exception:
            # Not stored: no ack, so Slack redelivers it (after its ack timeout or on the
            # next connection).
            log.exception("Could not handle Socket Mode envelope %s", req.envelope_id)
            return
        if handled:
            await sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    async def _handle(self, req: SocketModeRequest) -> bool:
        payload: Any = req.payload
        if req.type != "events_api":
            log.debug("Ignoring Socket Mode %s envelope", req.type)
            return True
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
            log.warning("Skipping a malformed events_api envelope %s", req.envelope_id)
            return True
        await self.client.connector.receive(self.client, payload)
        return True
