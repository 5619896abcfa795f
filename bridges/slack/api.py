"""The Web API client every login uses, and what its errors mean for the login.

slack-sdk's ``AsyncWebClient`` does the HTTP; by default it retries only connection errors,
so the rate-limit handler is added: a 429 waits its ``Retry-After`` and is sent again (the
call returns late but in order: the portal's queue waits for it, nothing is lost or
reordered). Errors that say the token is gone are told apart from the transient ones, so
the login stops instead of retrying forever (mautrix-slack #31, matrix-appservice-slack #683).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from . import config as cfg
from .ratelimit import MethodLimits

DEFAULT_API_URL = "https://slack.com/api/"

#: Errors after which the token will never work again: the login needs the user.
BAD_CREDENTIALS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
        "ekm_access_denied",
        "app_missing_action_url",
    }
)
#: Of those, the ones that mean the token itself is dead (not just a missing scope).
DEAD_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


def api_url(config: Mapping[str, Any]) -> str:
    return str(cfg.setting(config, "api_url")) or DEFAULT_API_URL


def web_client(
    config: Mapping[str, Any],
    token: str | None,
    *,
    watch: AsyncRetryHandler | None = None,
    limits: MethodLimits | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """A client for ``token`` against the configured API (``api_url``), with 429 retries
    (``limits``: a login's own, shared by its clients) and connection-error retries;
    ``watch`` sees every answer first (:class:`~.credentials.TokenWatch`); over ``session``'s
    kept-alive connections when given (else slack-sdk opens a connection per call)."""
    if limits is None:
        limits = MethodLimits(int(cfg.setting(config, "rate_limit_retries")))
    handlers: list[AsyncRetryHandler] = [] if watch is None else [watch]
    handlers += [AsyncConnectionErrorRetryHandler(max_retry_count=2), limits]
    return AsyncWebClient(
        token=token,
        session=session,
        base_url=api_url(config),
        timeout=int(cfg.setting(config, "request_timeout")),
        retry_handlers=handlers,
    )


def error_code(exc: BaseException) -> str:
    """Slack's ``error`` string of a failed call ("" for a non-API failure)."""
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        if isinstance(data, dict):
            return str(data.get("error") or "")
    return ""


def is_dead_token(exc: BaseException) -> bool:
    return error_code(exc) in DEAD_TOKEN
