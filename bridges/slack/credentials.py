"""Slack's word that a token is dead, wherever it comes from, ends the login once.

A token can be revoked, expire or lose its account at any time (mautrix-slack #31, #62;
matrix-appservice-slack #683, #592, #480: the anchors kept retrying unnoticed). Every Web API
answer of a login's clients passes :class:`TokenWatch` (a retry handler that never retries:
it only looks), so ``invalid_auth``, ``token_revoked``, ``account_inactive``... end the login
whichever call got them: ``auth.test`` at connect, any call of a feature module or of an SDK
helper (files upload v2), and ``apps.connections.open`` in slack-sdk's Socket Mode reconnect
loop, which would otherwise retry every few seconds forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from .api import DEAD_TOKEN

#: What each token is called in the notice (the user has to know which one to replace).
BOT_TOKEN = "bot token"
APP_TOKEN = "app-level token"
USER_TOKEN = "user token"

_WHY = {
    "invalid_auth": "is not valid",
    "not_authed": "was not accepted",
    "token_revoked": "was revoked",
    "token_expired": "has expired",
    "account_inactive": "belongs to a deactivated account or uninstalled app",
}


class TokenWatch(AsyncRetryHandler):
    """Looks at every answer of one Web API client; calls ``on_dead(which, error)`` when Slack
    says the token is dead. Never asks for a retry (put it first among the handlers)."""

    def __init__(self, which: str, on_dead: Callable[[str, str], None]) -> None:
        # ``can_retry_async`` stops asking a handler after max_retry_count attempts of a call:
        # this one must see every answer, retried or not.
        super().__init__(max_retry_count=1 << 30)
        self.which = which
        self.on_dead = on_dead

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body: Any = response.body if response is not None else None
        if isinstance(body, dict) and body.get("ok") is False:
            code = str(body.get("error") or "")
            if code in DEAD_TOKEN:
                self.on_dead(self.which, code)
        return False


def dead_notice(which: str, error: str, flow: str) -> str:
    """What the user reads: which token, what Slack said, that the bridge stopped, what to do."""
    why = _WHY.get(error, "was refused")
    return (
        f"Slack says the {which} {why} ({error}). The bridge stopped using this login and "
        f"will not retry it: log in again with `login slack {flow}` and a new token."
    )
