"""A Discord message's content as Matrix content: its text (Discord markdown -> HTML), and
the parts that follow it (attachments, embeds, stickers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bridgekit.contract.events import MessageContent

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector


class Render:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def content(self, client: DiscordClient, message: discord.Message) -> MessageContent:
        """The text of ``message`` as Matrix content."""
        return MessageContent(body=message.content)
