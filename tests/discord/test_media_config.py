"""The ``cdn_url`` setting: checked, and where discord.py builds avatar and sticker links."""

from __future__ import annotations

import discord.asset
import discord.gateway
import discord.http
import discord.webhook.async_
import pytest

from bridges.discord import config as cfg
from bridges.discord.api import point_discord_py

pytestmark = pytest.mark.engine_independent


def test_cdn_url_must_be_a_web_url() -> None:
    assert cfg.validate({"cdn_url": "http://127.0.0.1:9/"}) == []
    assert cfg.validate({"cdn_url": "ftp://cdn.example"}) == [
        ("cdn_url", "must be a http/https URL")
    ]
    assert cfg.cdn_url({}) == "https://cdn.discordapp.com"


def test_discord_py_builds_asset_links_on_the_configured_cdn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # restored after: the process-wide endpoints other tests point at their fakes
    monkeypatch.setattr(discord.asset.Asset, "BASE", discord.asset.Asset.BASE)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    webhook_route = discord.webhook.async_.Route  # type: ignore[attr-defined]
    monkeypatch.setattr(webhook_route, "BASE", webhook_route.BASE)
    ws = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(ws, "DEFAULT_GATEWAY", ws.DEFAULT_GATEWAY)
    point_discord_py({"cdn_url": "http://127.0.0.1:9/"})
    assert discord.asset.Asset.BASE == "http://127.0.0.1:9"
    point_discord_py({})
    assert discord.asset.Asset.BASE == "https://cdn.discordapp.com"
