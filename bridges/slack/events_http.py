"""The Events API over HTTP: Slack pushes a workspace's events to a listener of the bridge.

For apps that do not use Socket Mode (the app login gave a signing secret instead of an
app-level token). Every push is checked before anything reads it: the body is capped
(``events_api.max_body``, 413), the ``v0`` HMAC-SHA256 signature of
``v0:{X-Slack-Request-Timestamp}:{body}`` must match the signing secret of one of the app
logins and the timestamp be within 5 minutes (slack-sdk's ``SignatureVerifier``), or the
push is refused with 401 (forged, or replayed). A body that is not UTF-8 or not JSON is 400;
``url_verification`` gets its challenge back; an ``event_callback`` goes to the app login of
its workspace (``team_id``, then ``api_app_id``) through the same dedupe as Socket Mode
(Slack's retries, ``X-Slack-Retry-Num``, carry the same event id). The answer is 200 once the
event is stored, 500 if it could not be (Slack retries it), 200 for a malformed event (logged
and skipped: a retry would not make it better).
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bridgekit.contract.http_listener import start_listener, stop_listener

from . import config as cfg
from .envelopes import payload_problem
from .socket import MALFORMED

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.events_api")

_TIMESTAMP_RE = re.compile(r"^\d{1,12}$")
_SIGNATURE_RE = re.compile(r"^v0=[0-9a-f]{64}$")


class EventsListener:
    """The HTTP listener (``events_api`` in the config); :meth:`start` only if enabled."""

    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        settings = cfg.events_api(connector.config)
        self.enabled = bool(settings["enabled"])
        self.hostname = str(settings["hostname"])
        self.port = int(settings["port"])
        self.path = str(settings["path"])
        self.max_body = int(settings["max_body"])
        self.runner: web.AppRunner | None = None
        #: What each app login's pushes said their app id was (``api_app_id``).
        self.app_ids: dict[str, str] = {}

    async def start(self) -> None:
        if not self.enabled:
            return
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.path, self.push)
        self.runner = await start_listener(app, self.hostname, self.port)
        log.info("Slack Events API on http://%s:%d%s", self.hostname, self.port, self.path)

    async def stop(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await stop_listener(runner)

    # -- one push ------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> bytes | None:
        """The body, or None if it is over the cap (without reading more than the cap)."""
        if request.content_length is not None and request.content_length > self.max_body:
            return None
        body = await request.content.read(self.max_body + 1)
        return None if len(body) > self.max_body else body

    def signed_by(self, body: str, timestamp: str, signature: str) -> list[SlackClient]:
        """The app logins whose signing secret signed ``body`` (within the replay window)."""
        if not _TIMESTAMP_RE.match(timestamp) or not _SIGNATURE_RE.match(signature):
            return []
        found = []
        for client in self.connector.clients.values():
            secret = client.meta.signing_secret
            if client.is_app and secret and not client.dead:
                if SignatureVerifier(secret).is_valid(body, timestamp, signature):
                    found.append(client)
        return found

    def login_for(self, signed: list[SlackClient], payload: dict[str, Any]) -> SlackClient | None:
        """The app login a push is for: its workspace's, of the app that sent it."""
        team = payload.get("team_id")
        app_id = payload.get("api_app_id")
        ours = [c for c in signed if c.team_id == team]
        if not ours:
            return None
        for client in ours:
            if app_id and self.app_ids.get(client.login.id) == app_id:
                return client
        client = ours[0]
        if isinstance(app_id, str) and app_id:
            self.app_ids.setdefault(client.login.id, app_id)
        return client

    async def push(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if body is None:
            log.warning("Refused an Events API push over %d bytes", self.max_body)
            return web.Response(status=413, text="too large")
        try:
            text = body.decode("utf-8")  # Slack's JSON is UTF-8; the signature is of the text
        except UnicodeDecodeError:
            return web.Response(status=400, text="not UTF-8")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        signed = self.signed_by(text, timestamp, signature)
        if not signed:
            log.warning("Refused an Events API push: stale, or not signed by a known app")
            return web.Response(status=401, text="bad signature")
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            return web.Response(status=400, text="malformed JSON")
        if not isinstance(payload, dict):
            return web.Response(status=400, text="not a JSON object")
        kind = payload.get("type")
        if kind == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str):
                return web.Response(status=400, text="no challenge")
            return web.json_response({"challenge": challenge})
        retry = request.headers.get("X-Slack-Retry-Num")
        if retry:
            log.debug(
                "Events API retry %s (%s)", retry, request.headers.get("X-Slack-Retry-Reason")
            )
        return await self._event(signed, payload)

    async def _event(self, signed: list[SlackClient], payload: dict[str, Any]) -> web.Response:
        if payload.get("type") != "event_callback":
            log.debug("Ignoring an Events API push of type %r", payload.get("type"))
            return web.Response(text="ok")
        problem = payload_problem(payload)
        if problem is not None:
            log.warning("Skipping a malformed Events API push: %s", problem)
            return web.Response(text="skipped")
        client = self.login_for(signed, payload)
        if client is None:
            log.info("Events API push for a workspace without an app login")
            return web.Response(text="ok")
        try:
            await self.connector.receive(client, payload)
        except MALFORMED:
            log.exception("Skipping an Events API push that could not be read")
            return web.Response(text="skipped")
        except Exception as e:  # noqa: BLE001 - not stored: Slack retries on a 5xx
            log.warning("Events API push not stored (%s): left for Slack's retry", e)
            return web.Response(status=500, text="not stored")
        return web.Response(text="ok")
