"""Catch-up: what was said in a channel while the login was away (issue 22; anchors:
matrix-appservice-discord #398, #845, where such messages never arrived).

The runtime does the work (bridgekit/portal/backfill.py): when a login reports CONNECTED
(after its start, and after every reconnect: the connector reports TRANSIENT_DISCONNECT
when discord.py loses the gateway) it queues a catch-up in each of the login's portals,
anchored at the newest remote message bridged there (the runtime's message table, so it
holds after a restart too), and asks :meth:`DiscordBackfill.fetch_messages` page by page,
deduplicating by message id. This module only reads Discord: ``GET
/channels/{id}/messages?after=<anchor>`` for the channel and each of its active threads (a
thread's messages are not the channel's; GUILD_CREATE lists the active ones, also those made
during an outage), merged oldest first by id (snowflakes grow with
time).

Live events must not overtake it: a login holds its live gateway events from each
(re)connect (:class:`~bridgekit.contract.live_gate.LiveGate`) until the runtime has queued
its catch-ups (``catch_up_queued``); what arrives meanwhile, including what a RESUME
replays, then waits behind the catch-up in the portal's queue and is dropped as a duplicate
if it brought it.

History of new portals (``BACKWARD``) is not fetched here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.capabilities import BACKWARD, BackfillHandler, FetchResult
from bridgekit.contract.events import PortalKey, RemoteMessage, RemoteMessageID
from bridgekit.contract.live_gate import LiveGate

from .inbound import portal_channel_id

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.catchup")


class DiscordBackfill(BackfillHandler):
    """DiscordClient's backfill capability (forward only: catch-up)."""

    connector: DiscordConnector
    live_gate: LiveGate

    async def fetch_messages(
        self,
        portal: PortalKey,
        anchor: RemoteMessageID | None,
        direction: str,
        limit: int,
        cursor: str | None = None,
    ) -> FetchResult:
        client: DiscordClient = self  # type: ignore[assignment]
        if direction == BACKWARD:
            return FetchResult()
        return await client.connector.catchup.forward(client, portal, cursor or anchor, limit)

    async def catch_up_queued(self) -> None:
        self.live_gate.open()


class CatchUp:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def forward(
        self, client: DiscordClient, portal: PortalKey, position: str | None, limit: int
    ) -> FetchResult:
        """Up to ``limit`` messages after ``position`` in the portal's channel and its
        active threads, oldest first; the cursor is the last message read (bridged or not)."""
        if not position or not position.isdigit() or limit <= 0 or not portal.id.isdigit():
            return FetchResult()
        if client.is_bot == bool(portal.receiver) or client.dead or client.gateway is None:
            return FetchResult()  # a guild channel is the bot's, a DM its personal login's
        channel = await self._channel(client, int(portal.id))
        if channel is None:
            return FetchResult()
        after = discord.Object(int(position))
        found: dict[int, discord.Message] = {}
        for source in [channel, *self._threads(channel)]:
            try:
                async for message in source.history(
                    limit=limit + 1, after=after, oldest_first=True
                ):
                    found[message.id] = message
            except discord.HTTPException as e:
                log.info("Catch-up of %s not read: %s", getattr(source, "id", "?"), e)
                if source is channel:
                    raise
        ordered = [found[i] for i in sorted(found)]
        taken = ordered[:limit]
        messages = [m for m in [await self._convert(client, msg) for msg in taken] if m]
        cursor = str(taken[-1].id) if taken else position
        return FetchResult(messages, cursor=cursor, has_more=len(ordered) > limit)

    async def _channel(self, client: DiscordClient, channel_id: int) -> Any:
        channel = client.channel(channel_id)
        if channel is not None or client.gateway is None:
            return channel
        try:
            return await client.gateway.fetch_channel(channel_id)
        except discord.HTTPException as e:
            log.info("Channel %s not found for catch-up: %s", channel_id, e)
            return None

    @staticmethod
    def _threads(channel: Any) -> list[Any]:
        guild = getattr(channel, "guild", None)
        if guild is None:
            return []
        return [t for t in guild.threads if t.parent_id == channel.id and not t.archived]

    async def _convert(
        self, client: DiscordClient, message: discord.Message
    ) -> RemoteMessage | None:
        inbound = self.connector.inbound
        try:
            if not await self.connector.is_foreign(client, message):
                return None
            if await inbound.held_back_empty(client, message):
                return None
            return await inbound.to_remote(client, message)
        except Exception:  # noqa: BLE001 - one odd message must not stop the catch-up
            channel_id = portal_channel_id(message.channel)
            log.exception("Discord message %s of %s not converted", message.id, channel_id)
            return None
