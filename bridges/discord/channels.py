"""A bridged guild's channels and the guild itself, followed on Matrix.

Which channels are portals: text, announcement, forum and media channels (voice channels and
categories never are, even their text chat). A channel renamed or given a new topic renames
its room; a channel deleted leaves its room with a notice and closed to new joins; a channel
created in a guild bridged with ``guild_portals: all`` gets its room at once. The guild is a
space: its name and icon follow the guild's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.events import ChatInfo, RemoteChatInfoChange, RemoteChatResync

from . import config as cfg
from .guilds import PORTAL_TYPES, space_of
from .ids import portal_key

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.channels")


def is_portal_channel(channel: Any) -> bool:
    """Whether messages in ``channel`` are bridged by its type: a portal channel, a thread of
    one, a DM or group DM (not a voice channel's chat, a stage, a category)."""
    if isinstance(channel, discord.Thread):
        return getattr(channel.parent, "type", None) in PORTAL_TYPES or channel.parent is None
    if getattr(channel, "guild", None) is None:
        return True
    return getattr(channel, "type", None) in PORTAL_TYPES


class Channels:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        inbound = connector.inbound
        inbound.register("guild_channel_update", self.on_update, lambda a: a[1].id)
        inbound.register("guild_channel_delete", self.on_delete, lambda a: a[0].id)
        inbound.register("guild_channel_create", self.on_create, lambda a: a[0].id)
        inbound.register("guild_update", self.on_guild_update, lambda a: None)

    def carries(self, message: discord.Message) -> bool:
        """Whether ``message`` is bridged for what it is and where it is: not in a voice
        channel's chat, not a "started a thread" system message (the thread's root is made
        from its THREAD_CREATE: :mod:`.threads`), not the empty "thread starter" message a
        thread made from a message opens with (that message is the root already)."""
        if message.type in (
            discord.MessageType.thread_created,
            discord.MessageType.thread_starter_message,
        ):
            return False
        return is_portal_channel(message.channel)

    def _bridged(self, client: DiscordClient, channel: Any) -> bool:
        """A channel of a guild this login bridges (a personal login leaves guilds to bots)."""
        guild = getattr(channel, "guild", None)
        return guild is not None and client.bridges_guild(guild.id)

    async def on_update(self, client: DiscordClient, before: Any, after: Any) -> None:
        """A channel renamed or with a new topic: its room follows (if it has one)."""
        if not self._bridged(client, after) or after.type not in PORTAL_TYPES:
            return
        name = f"#{after.name}" if after.name != before.name else None
        before_topic, topic = getattr(before, "topic", None), getattr(after, "topic", None)
        topic = (topic or "") if topic != before_topic else None
        if name is None and topic is None:
            return
        portal = portal_key(after.id)
        if not await self.connector.bridge.has_room(portal):
            return
        # (several logins see the same change: the runtime skips what the room shows already)
        await self.connector.bridge.queue_remote_event(
            client.login.id, RemoteChatInfoChange(portal, name=name, topic=topic)
        )

    async def on_delete(self, client: DiscordClient, channel: Any) -> None:
        """A deleted channel's room says so and takes no new members; its webhook is gone."""
        if not self._bridged(client, channel) or not self.connector.first_sight(
            f"chan-deleted:{channel.id}"
        ):
            return
        await self.connector.webhooks.forget(channel.id)
        portal = portal_key(channel.id)
        if not await self.connector.bridge.has_room(portal):
            return
        await self.connector.bridge.notify_portal(
            portal,
            f"The channel #{channel.name} was deleted on Discord: this room is no longer "
            "bridged (an admin may delete it with `delete-portal`).",
        )
        await self.connector.bridge.queue_remote_event(
            client.login.id, RemoteChatInfoChange(portal, joinable=False)
        )

    async def on_create(self, client: DiscordClient, channel: Any) -> None:
        """With ``guild_portals: all``, a new channel of a bridged guild gets its room."""
        if not client.is_bot or not self._bridged(client, channel):
            return
        if channel.type not in PORTAL_TYPES:
            return
        if cfg.setting(self.connector.config, "guild_portals") != "all":
            return
        if not self.connector.first_sight(f"chan-created:{channel.id}"):
            return
        await self.connector.bridge.open_portal(portal_key(channel.id), client.login.user_mxid)

    async def on_guild_update(
        self, client: DiscordClient, before: discord.Guild, after: discord.Guild
    ) -> None:
        """The guild's name or icon changed: its space follows (through one of its rooms:
        the runtime updates a space when a portal names it)."""
        if not client.bridges_guild(after.id):
            return
        if (before.name, before.icon, before.description) == (
            after.name,
            after.icon,
            after.description,
        ):
            return
        for channel in self.connector.guilds.portal_channels(after):
            portal = portal_key(channel.id)
            if await self.connector.bridge.has_room(portal):
                space = space_of(after)
                space.avatar_url = self.connector.media.allowed_or_none(space.avatar_url)
                event = RemoteChatResync(portal, info=ChatInfo(parent=space))
                await self.connector.bridge.queue_remote_event(client.login.id, event)
                return
