"""A Discord message's content as Matrix content: its text (Discord markdown -> HTML), and
the parts that follow it (attachments, embeds, stickers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bridgekit.contract.events import MessageContent, RemoteUserID

from .markdown import discord_to_matrix
from .names import InboundNames, portal_rooms

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector


class Render:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def content(self, client: DiscordClient, message: discord.Message) -> MessageContent:
        """The text of ``message`` as Matrix content: formatting as HTML (everything from
        Discord escaped), mentions as pills and ``m.mentions``; ``@everyone``/``@here``
        notify the room only where they pinged on Discord."""
        raw = message.content or ""
        rooms = await portal_rooms(self.connector, client, raw)
        text = discord_to_matrix(raw, InboundNames(self.connector, client, message, rooms))
        return MessageContent(
            body=text.body,
            html=text.html,
            mentions=[RemoteUserID(m) for m in text.mentions.user_ids],
            mentions_room=bool(message.mention_everyone),
        )
