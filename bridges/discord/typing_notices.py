"""Typing, both ways, for people with their own Discord account.

Matrix -> Discord: a personal login's user typing in a portal makes their account type
(``POST /channels/{id}/typing``, which shows for about 10 s: it is sent again every
:data:`REPEAT` seconds while they type, at most :data:`MAX_TYPING`). A bot login never
types: its user is relayed through a webhook, and webhooks cannot type.

Discord -> Matrix: TYPING_START -> the typist's ghost types for 10 s (in a guild, as one of its
bots receives it; in a DM, as the personal login's session does). The bridge's own accounts
are left out: a personal login's typing is its Matrix user's own (shown already), and
reporting it back would make the two sides echo each other's typing forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord

from bridgekit.contract.events import EventSender, MatrixTyping, PortalKey, RemoteTyping

from .ids import portal_key, user_rid

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.typing")

#: Seconds between typing calls while a Matrix user types (Discord shows one for ~10 s).
REPEAT = 8.0
#: Seconds a Matrix user is shown typing at most without a stop from Matrix.
MAX_TYPING = 120.0
#: How long a Discord user's typing shows on Matrix.
TIMEOUT_MS = 10_000


class Typing:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self._tasks: dict[tuple[str, PortalKey], asyncio.Task[None]] = {}

    def register(self) -> None:
        key = self.connector.raw_channel_key
        self.connector.inbound.register(
            "raw_typing", self.from_discord, lambda a: key(a[0].channel_id)
        )

    # -- Matrix -> Discord ----------------------------------------------------------------------

    async def from_matrix(self, client: DiscordClient, typing: MatrixTyping) -> None:
        if client.is_bot or not typing.portal.id.isdigit():
            return
        key = (client.login.id, typing.portal)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        if typing.typing:
            channel_id = int(typing.portal.id)
            self._tasks[key] = asyncio.create_task(
                self._type(client, channel_id, key), name=f"discord-typing:{channel_id}"
            )

    async def _type(
        self, client: DiscordClient, channel_id: int, key: tuple[str, PortalKey]
    ) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + MAX_TYPING
        try:
            while loop.time() < until and client.gateway is not None:
                try:
                    await client.gateway.http.send_typing(channel_id)
                except discord.HTTPException as e:
                    log.debug("Typing in %s refused: %s", channel_id, e)
                    return
                await asyncio.sleep(REPEAT)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def stop_login(self, client: DiscordClient) -> None:
        """The login disconnects: it types nowhere any more."""
        tasks = [t for (login, _), t in self._tasks.items() if login == client.login.id]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- Discord -> Matrix ----------------------------------------------------------------------

    async def from_discord(self, client: DiscordClient, payload: discord.RawTypingEvent) -> None:
        connector = self.connector
        if not connector.receives(client, payload.guild_id, payload.channel_id):
            return
        if connector.own_account(payload.user_id) or connector.personal.login_of(payload.user_id):
            return
        if payload.guild_id is None:
            portal = portal_key(payload.channel_id, client.login.id)
        else:
            portal = portal_key(connector.raw_channel_key(payload.channel_id))
        event = RemoteTyping(
            portal=portal,
            sender=EventSender(user_rid(payload.user_id)),
            typing=True,
            timeout_ms=TIMEOUT_MS,
        )
        await connector.bridge.queue_remote_event(client.login.id, event)
