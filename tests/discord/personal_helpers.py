"""Helpers of the personal-login tests: user tokens for the
fake's people, and ``login discord user`` through the login flow's checks."""

from __future__ import annotations

import secrets
from typing import Any

from bridgekit.bridge import Bridge
from bridgekit.testing.matrix_client import MatrixTestClient
from bridges.discord.client import DiscordClient
from tests.conftest import eventually
from tests.discord.conftest import complete_login
from tests.harness.discord_fake import FakeDiscord

DP_KEY = "fi.mau.double_puppet_source"


def user_token(fake: FakeDiscord, user: Any) -> str:
    """``user``'s own (bare) token on the fake, made on first use."""
    if not user.token:
        user.token = "u." + secrets.token_urlsafe(24)
        fake.tokens[user.token] = user.id
    return str(user.token)


async def login_user(
    bridge: Bridge, matrix_user: MatrixTestClient, fake: FakeDiscord, discord_user: Any
) -> DiscordClient:
    """``matrix_user`` logs in ``discord_user``'s account with its user token; its gateway
    session is ready."""
    info = await complete_login(bridge, matrix_user.user_id, "user", user_token(fake, discord_user))
    await bridge.commands.get_or_create_user(matrix_user.user_id)
    client = await bridge.add_login(info)
    assert isinstance(client, DiscordClient)
    await eventually(lambda: client.connected, timeout=20)
    return client


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"].get("body") for e in events if e.get("type") == "m.room.message"]


async def portal_room(bridge: Bridge, matrix_user: MatrixTestClient, key: Any) -> str:
    """The room of portal ``key`` once made, joined by ``matrix_user`` (whose double puppet
    may have joined it already: then there is no invite to wait for)."""
    found: list[str] = []

    async def made() -> bool:
        portal = await bridge.store.get_portal("discord", key)
        if portal is not None and portal.mxid:
            found.append(portal.mxid)
        return bool(found)

    await eventually(made, timeout=20)
    await matrix_user.join(found[0])
    return found[0]
