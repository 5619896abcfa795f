"""Guilds and their channels: which are bridged, and what their rooms show.

A bot login bridges the guilds its user names with ``discord bridge-guild <guild id>``; the
guild becomes a Matrix space and its text and announcement channels and forums portals in it
(threads and forum posts are threads of their channel's room). With ``guild_portals: all``
every such channel's room is made at once; otherwise (``on_demand``) when it is first active.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.commands import Command, CommandEvent
from bridgekit.contract.events import ChatInfo, PortalKey, SpaceInfo

from . import config as cfg
from .ids import portal_key, space_id

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.guilds")

#: Channels that become portals: text, announcement, forum and media channels.
PORTAL_TYPES = (
    discord.ChannelType.text,
    discord.ChannelType.news,
    discord.ChannelType.forum,
    discord.ChannelType.media,
)


def space_of(guild: discord.Guild) -> SpaceInfo:
    return SpaceInfo(
        id=space_id(guild.id),
        name=guild.name,
        topic=guild.description,
        avatar_url=str(guild.icon.url) if guild.icon else None,
    )


class Guilds:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def chat_info(self, client: DiscordClient, portal: PortalKey) -> ChatInfo:
        if portal.receiver:  # a DM or group DM
            return await self.connector.dms.chat_info(client, portal)
        channel = client.channel(int(portal.id)) if portal.id.isdigit() else None
        if channel is None and client.gateway is not None and portal.id.isdigit():
            channel = await client.gateway.fetch_channel(int(portal.id))
        if isinstance(channel, discord.abc.GuildChannel):
            space = space_of(channel.guild)
            space.avatar_url = self.connector.media.allowed_or_none(space.avatar_url)
            return ChatInfo(
                name=f"#{channel.name}",
                topic=getattr(channel, "topic", None),
                parent=space,
                members=await self.connector.roles.members(client, channel.guild),
            )
        return ChatInfo()

    def portal_channels(self, guild: discord.Guild) -> list[Any]:
        return [c for c in guild.channels if c.type in PORTAL_TYPES]

    # -- commands -------------------------------------------------------------------------------

    def commands(self) -> list[Command]:
        return [
            Command(
                "discord",
                self.command,
                "Discord: `guilds` (the servers your bot is in), `bridge-guild <id>`, "
                "`unbridge-guild <id>`.",
                "guilds | bridge-guild <server id> | unbridge-guild <server id>",
                section="Discord",
            )
        ]

    def bot_of(self, sender: str) -> list[DiscordClient]:
        return [
            c
            for c in self.connector.clients.values()
            if c.login.user_mxid == sender and c.is_bot and not c.dead
        ]

    async def command(self, ce: CommandEvent) -> None:
        sub = ce.args[0].lower() if ce.args else ""
        bots = self.bot_of(ce.sender)
        if sub not in ("guilds", "bridge-guild", "unbridge-guild"):
            await ce.reply("Usage: discord guilds | bridge-guild <server id> | unbridge-guild <id>")
            return
        if not bots:
            await ce.reply("You have no Discord bot login: `login discord bot` first.")
            return
        if sub == "guilds":
            lines = []
            for bot in bots:
                for guild in bot.gateway.guilds if bot.gateway else []:
                    mark = "bridged" if bot.bridges_guild(guild.id) else "not bridged"
                    lines.append(f"- {guild.name} ({guild.id}): {mark}")
            await ce.reply("\n".join(lines) or "Your bot is in no server yet: invite it.")
            return
        if len(ce.args) != 2 or not ce.args[1].isdigit():
            await ce.reply(f"Usage: discord {sub} <server id>")
            return
        guild_id = int(ce.args[1])
        for bot in bots:
            guild = bot.gateway.get_guild(guild_id) if bot.gateway else None
            if guild is None:
                continue
            if sub == "unbridge-guild":
                await self.unbridge(bot, guild)
                await ce.reply(f"{guild.name} is no longer bridged (its rooms stay).")
            else:
                made = await self.bridge(bot, guild, ce.sender)
                made_text = f"; {made} rooms made" if made else ""
                await ce.reply(f"{guild.name} is bridged{made_text}.")
            return
        await ce.reply(f"Your bot is not in the server {guild_id} (or Discord has not said so).")

    async def bridge(self, bot: DiscordClient, guild: discord.Guild, user_mxid: str) -> int:
        """Bridge ``guild`` through ``bot``; with ``guild_portals: all``, make every
        channel's room now (returns how many)."""
        if str(guild.id) not in bot.state.guilds:
            bot.state.guilds.append(str(guild.id))
            await bot.save_state()
        if cfg.setting(self.connector.config, "guild_portals") != "all":
            return 0
        made = 0
        for channel in self.portal_channels(guild):
            if await self.connector.bridge.open_portal(portal_key(channel.id), user_mxid):
                made += 1
        return made

    async def unbridge(self, bot: DiscordClient, guild: discord.Guild) -> None:
        if str(guild.id) in bot.state.guilds:
            bot.state.guilds.remove(str(guild.id))
            await bot.save_state()
