"""Socket Mode: the websocket ``apps.connections.open`` hands out, ``hello``, envelopes in
order on one writer task, acks, redelivery of unacknowledged envelopes, dropped sockets and
``disconnect`` frames."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from aiohttp import web

from .models import (
    Envelope,
    Recorded,
)


class _Socket:
    """One Socket Mode connection: frames go out in order through one writer task."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self.ws = ws
        self.transport = transport
        self.queue: asyncio.Queue[dict[str, Any] | str | None] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None

    async def write(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
            except (ConnectionError, RuntimeError):
                return


class SocketMode:
    """The Socket Mode endpoint and the test controls over its connections."""

    # --- Socket Mode ---------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        rec = Recorded("socket", request.path, dict(request.query), None, time.time())
        self.requests.append(rec)
        if ticket not in self._tickets:
            rec.status = 401
            self._notify()
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        if self.refused_sockets > 0:  # the ticket is spent all the same
            self.refused_sockets -= 1
            rec.status = 503
            self._notify()
            return web.Response(status=503, text="try again")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        rec.status = 101
        sock = _Socket(ws, request.transport)
        sock.writer = self._spawn(sock.write())
        self._sockets.append(sock)
        sock.queue.put_nowait(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }
        )
        for env in self.envelopes:
            if not env.acked:
                env.sent += 1
                sock.queue.put_nowait(env.frame())
        self._notify()
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                eid = data.get("envelope_id") if isinstance(data, dict) else None
                if eid:
                    self.acks[eid] = data.get("payload")
                    for env in self.envelopes:
                        if env.envelope_id == eid:
                            env.acked = True
                            env.ack_payload = data.get("payload")
                    self._notify()
        finally:
            if sock in self._sockets:
                self._sockets.remove(sock)
            sock.queue.put_nowait(None)
            self._notify()
        return ws

    def redeliver_unacked(self) -> int:
        """Send every unacknowledged envelope again (``retry_attempt`` + 1) on a live socket."""
        live = [s for s in self._sockets if not s.ws.closed]
        if not live:
            return 0
        n = 0
        for env in self.envelopes:
            if not env.acked:
                env.sent += 1
                live[-1].queue.put_nowait(env.frame())
                n += 1
        return n

    def expire_unacked(self) -> int:
        """Slack gives up on the envelopes nobody acknowledged (the app was away longer than
        Slack keeps retrying): they are never sent again; only ``conversations.history`` still
        has their messages. Returns how many were dropped."""
        kept = [env for env in self.envelopes if env.acked]
        n = len(self.envelopes) - len(kept)
        self.envelopes[:] = kept
        return n

    def refuse_sockets(self, times: int = 1) -> None:
        """The next ``times`` websocket handshakes fail with 503 (their URLs are spent: a
        client must ask ``apps.connections.open`` for a new one)."""
        self.refused_sockets += times

    def send_frame(self, frame: dict[str, Any] | str) -> bool:
        """Send one frame as is on the newest live socket (a dict as JSON, a string raw): for
        malformed envelopes a client must survive. Not recorded in ``envelopes``; an ack of
        its ``envelope_id`` still lands in ``acks``. False if no socket is up."""
        live = [s for s in self._sockets if not s.ws.closed]
        if not live:
            return False
        live[-1].queue.put_nowait(frame)
        return True

    async def drop_sockets(self) -> int:
        """Close every Socket Mode connection's TCP stream without a close frame."""
        n = 0
        for sock in list(self._sockets):
            if sock.transport is not None:
                sock.transport.abort()
                n += 1
        return n

    async def request_refresh(
        self, reason: str = "refresh_requested", close_after: float | None = None
    ) -> int:
        """Send a ``disconnect`` frame on every connection (the client should reconnect with a
        fresh ``apps.connections.open``); with ``close_after``, close those connections that
        many seconds later, as Slack does (about 10 s after ``warning``)."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        socks = list(self._sockets)
        for sock in socks:
            sock.queue.put_nowait(frame)
        if close_after is not None:

            async def close_later() -> None:
                await asyncio.sleep(close_after)
                for sock in socks:
                    await sock.ws.close()

            self._spawn(close_later())
        return len(socks)

    @property
    def connected_sockets(self) -> int:
        return sum(1 for s in self._sockets if not s.ws.closed)

    async def _resend_until_acked(self, env: Envelope, timeout: float) -> None:
        for _ in range(3):
            await asyncio.sleep(timeout)
            if env.acked or env not in self.envelopes:  # acknowledged, or expired
                return
            live = [s for s in self._sockets if not s.ws.closed]
            if live:
                env.sent += 1
                live[-1].queue.put_nowait(env.frame())
                self._notify()

    def envelope_for(self, payload: dict[str, Any]) -> Envelope:
        for env in self.envelopes:
            if env.payload is payload or env.payload["event_id"] == payload["event_id"]:
                return env
        raise KeyError(payload["event_id"])
