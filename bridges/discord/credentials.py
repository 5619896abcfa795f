"""A token Discord refuses, whenever it does: a 401 from any REST call made with it.

Discord answers 401 to every call once a token is reset (and closes the gateway with 4004,
which client.py handles): the login then turns BAD_CREDENTIALS once, with one notice, and
stops IDENTIFYing (:meth:`DiscordClient.token_refused`). The calls are discord.py's, made
anywhere in the connector: an aiohttp trace on the client's HTTP session sees them all.
Webhook calls carry no ``Authorization`` header (their token is in the URL) and a webhook's
401 says nothing about the login's token: they are not counted.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from .client import DiscordClient

#: Answered 401 for a user token although the token is good (it has no application).
NOT_FOR_USER_TOKENS = ("/applications/@me",)


def refusal_trace(client: DiscordClient, trace: aiohttp.TraceConfig | None) -> aiohttp.TraceConfig:
    """``trace`` (or a new one) that reports a 401 to ``client``."""
    trace = trace or aiohttp.TraceConfig()
    tasks: set[asyncio.Task[None]] = set()

    async def on_end(_s: Any, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
        if params.response.status != 401 or "Authorization" not in params.headers:
            return
        path = params.url.path
        if not client.is_bot and path.endswith(NOT_FOR_USER_TOKENS):
            return
        if "/webhooks/" in path:
            path = path.split("/webhooks/")[0] + "/webhooks/..."  # its token is in the path
        # Not awaited here: the refusal closes this very HTTP session.
        task = asyncio.get_running_loop().create_task(
            client.token_refused(f"the token was refused (401 from {params.method} {path})")
        )
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    trace.on_request_end.append(on_end)
    return trace
