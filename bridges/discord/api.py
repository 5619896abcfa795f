"""discord.py pointed at the configured Discord, and the few REST calls made outside a client.

discord.py keeps its endpoints in class attributes (``Route.BASE`` for REST and webhooks,
``DiscordWebSocket.DEFAULT_GATEWAY``): the connector sets them once from its config, so one
process talks to one Discord (the real one unless ``api_url`` / ``gateway_url`` say
otherwise, as the tests' fake does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord
import discord.asset
import discord.gateway
import discord.http
import discord.webhook.async_
import yarl

from . import config as cfg
from .state import USER


def point_discord_py(config: Mapping[str, Any]) -> None:
    """Aim discord.py's REST, webhook, gateway and CDN (asset) endpoints at the configured
    Discord."""
    base = cfg.api_url(config)
    discord.http.Route.BASE = base
    discord.webhook.async_.Route.BASE = base  # type: ignore[attr-defined]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(cfg.gateway_url(config))
    discord.asset.Asset.BASE = cfg.cdn_url(config)


async def checked_identity(
    config: Mapping[str, Any], token: str, kind: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the token's user, its application for a bot): raises ``discord.LoginFailure`` if
    Discord refuses the token."""
    point_discord_py(config)
    http = discord.http.HTTPClient(
        asyncio.get_running_loop(),
        http_trace=user_token_trace() if kind == USER else None,
    )
    try:
        me: dict[str, Any] = await http.static_login(token)
        app = await http.application_info() if me.get("bot") else None
        return me, app
    finally:
        await http.close()


def user_token_trace() -> aiohttp.TraceConfig:
    """An aiohttp trace that sends a user token as it is: discord.py prefixes every token
    with ``Bot ``, which is right for bots only (the headers it passes are the request's)."""
    trace = aiohttp.TraceConfig()

    async def on_start(_s: Any, _c: Any, params: aiohttp.TraceRequestStartParams) -> None:
        auth = params.headers.get("Authorization", "")
        if auth.startswith("Bot "):
            params.headers["Authorization"] = auth[4:]

    trace.on_request_start.append(on_start)
    return trace
