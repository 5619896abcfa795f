"""One HTTP connection pool for the Web API calls of every login.

slack-sdk's ``AsyncWebClient`` opens a new ``aiohttp.ClientSession`` for each call unless it is
given one, so every ``chat.postMessage`` paid for a new TCP (and, against Slack, TLS)
connection: a sixth of the bridge's CPU when relaying Matrix messages one at a time
(bench/slack.py, py-spy) and a few milliseconds of latency each. The connector keeps one
session with keep-alive connections for all its logins; each call still carries its own
login's token, and no cookies are kept (one workspace's cookies must not reach another's
calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from . import config as cfg


class WebSessions:
    """The shared session, made on first use (inside the running loop) and closed at stop."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # slack-sdk applies its timeout only to the sessions it makes itself.
            timeout = aiohttp.ClientTimeout(
                total=float(cfg.setting(self.config, "request_timeout"))
            )
            self._session = aiohttp.ClientSession(
                timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
