"""The Events API over HTTP: signed pushes (``v0=HMAC-SHA256``), retries with
``X-Slack-Retry-Num``, deliberately stale or badly signed pushes and ``url_verification``."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import aiohttp

from .models import (
    PushResult,
)


class EventsApiPusher:
    """Pushing events to an HTTP endpoint as Slack does."""

    async def _push_and_record(self, url: str, payload: dict[str, Any]) -> None:
        """Push, and retry a failure (not 2xx, or no answer in 3 s) after each of
        ``push_retry_delays``; every attempt lands in ``pushes``."""
        delays = list(self.push_retry_delays)
        attempt = 0
        while True:
            try:
                result = await self.push_event(
                    url,
                    payload,
                    retry_num=attempt or None,
                    retry_reason="http_error" if attempt else "http_timeout",
                )
            except (aiohttp.ClientError, TimeoutError) as e:
                result = PushResult(0, repr(e), {})
            self.pushes.append((payload, result))
            self._notify()
            if 200 <= result.status < 300 or not delays:
                return
            await asyncio.sleep(delays.pop(0))
            attempt += 1

    # --- the Events API over HTTP --------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int, secret: str | None = None) -> str:
        base = b"v0:" + str(timestamp).encode() + b":" + body
        key = (secret or self.signing_secret).encode()
        return "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest()

    async def push_event(
        self,
        url: str,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timeout: float = 3.0,
    ) -> PushResult:
        """POST ``payload`` to ``url`` as Slack does: JSON body, ``X-Slack-Request-Timestamp``
        and ``X-Slack-Signature`` (override ``timestamp``, ``secret`` or ``signature`` to send a
        stale or badly signed one), ``X-Slack-Retry-Num`` / ``-Reason`` on a retry."""
        assert self._session is not None, "start() the fake first"
        body = json.dumps(payload).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or self.sign(body, ts, secret),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        async with self._session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            return PushResult(resp.status, await resp.text(), dict(resp.headers))

    async def push_stale(self, url: str, payload: dict[str, Any], age: int = 600) -> PushResult:
        """A correctly signed push whose timestamp is ``age`` seconds old (a replay)."""
        return await self.push_event(url, payload, timestamp=int(time.time()) - age)

    async def push_badly_signed(self, url: str, payload: dict[str, Any]) -> PushResult:
        """A push signed with the wrong secret."""
        return await self.push_event(url, payload, secret="not-the-" + self.signing_secret)

    async def verify_url(self, url: str) -> tuple[bool, PushResult]:
        """Slack's ``url_verification``: the endpoint must answer with the challenge (as plain
        text, or JSON ``{"challenge": ...}``)."""
        challenge = secrets.token_urlsafe(24)
        payload = {
            "token": self.verification_token,
            "challenge": challenge,
            "type": "url_verification",
        }
        result = await self.push_event(url, payload)
        ok = result.status == 200 and (
            result.body.strip() == challenge or _json_field(result.body, "challenge") == challenge
        )
        return ok, result


def _json_field(text: str, key: str) -> Any:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None
