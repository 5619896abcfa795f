"""Reactions, both ways: unicode emoji, and custom emoji shown as images on Matrix.

Discord -> Matrix: MESSAGE_REACTION_ADD / REMOVE. A unicode emoji is the reaction's key; a
custom emoji (``<:name:id>``) comes with its id, name and image on Discord's CDN (a host of
``media_hosts``), which the runtime uploads once and reacts with as ``mxc://``. A guild's
reactions reach every bot login in it: one of them (:meth:`DiscordConnector.guild_receiver`)
bridges them, so nothing is reacted twice nor taken back late; a reaction by a personal
login's account comes from its Matrix user (the echo of one made from Matrix finds the
runtime's record of it and is not reacted again). Reactions to messages that were never
bridged are dropped (no room is made for them).

Matrix -> Discord: only a personal login reacts (as its own account). Relayed Matrix users'
reactions are not bridged: a webhook cannot react, and the bot reacting for everyone would
merge them into one. The key must be a unicode emoji, or the ``mxc://`` of a custom emoji the
bridge reported (Discord takes it if the account may use that emoji).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.capabilities import SendRefused
from bridgekit.contract.events import (
    MatrixReaction,
    MatrixReactionRemove,
    PortalKey,
    RemoteMessageID,
    RemoteReaction,
    RemoteReactionRemove,
)
from bridgekit.contract.results import MessageResult

from . import config as cfg
from .ids import portal_key

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.reactions")

UNKNOWN_EMOJI = 10014
_NAME_RE = re.compile(r"[^A-Za-z0-9_]")
#: Custom emoji names remembered.
MAX_NAMES = 10_000
#: The longest key taken as one unicode emoji (ZWJ sequences with skin tones are long).
MAX_EMOJI_CHARS = 16


def emoji_name(name: Any) -> str:
    """A custom emoji's name as Discord allows them (2-32 of ``A-Za-z0-9_``)."""
    return _NAME_RE.sub("", str(name or ""))[:32] or "emoji"


def unicode_key(key: str) -> bool:
    """Whether a Matrix reaction key can be a Discord unicode emoji."""
    return (
        0 < len(key) <= MAX_EMOJI_CHARS and not key.isascii() and not any(c.isspace() for c in key)
    )


class Reactions:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        #: Custom emoji names by id (Discord's reaction routes name an emoji ``name:id``).
        self._names: dict[str, str] = {}

    def _learn(self, emoji_id: str, name: str) -> None:
        if len(self._names) >= MAX_NAMES:
            self._names.clear()
        self._names[emoji_id] = name

    def register(self) -> None:
        inbound = self.connector.inbound
        key = self.connector.raw_channel_key
        inbound.register("raw_reaction_add", self.added, lambda a: key(a[0].channel_id))
        inbound.register("raw_reaction_remove", self.removed, lambda a: key(a[0].channel_id))

    # -- Discord -> Matrix ----------------------------------------------------------------------

    def emoji_fields(self, emoji: discord.PartialEmoji) -> dict[str, Any]:
        """``key`` and, for a custom emoji whose image may be fetched, ``emoji_id``,
        ``emoji_url``, ``emoji_name``."""
        if emoji.id is None:
            return {"key": str(emoji.name or "")}
        name = emoji_name(emoji.name)
        fields: dict[str, Any] = {"key": f":{name}:"}
        ext = "gif" if emoji.animated else "png"
        url = f"{cfg.cdn_url(self.connector.config)}/emojis/{emoji.id}.{ext}"
        self._learn(str(emoji.id), name)
        if cfg.media_allowed(self.connector.config, url):
            fields.update(emoji_id=str(emoji.id), emoji_url=url, emoji_name=name)
        return fields

    async def _portal(
        self, client: DiscordClient, payload: discord.RawReactionActionEvent
    ) -> PortalKey | None:
        """The portal of a reaction ``client`` should bridge, None otherwise."""
        if not self.connector.receives(client, payload.guild_id, payload.channel_id):
            return None
        if self.connector.own_account(payload.user_id):
            return None
        if payload.guild_id is None:
            portal = portal_key(payload.channel_id, client.login.id)
        else:
            portal = portal_key(self.connector.raw_channel_key(payload.channel_id))
        target = RemoteMessageID(str(payload.message_id))
        if await self.connector.bridge.find_message(portal, target) is None:
            return None  # never bridged: nothing to react to, no room to make
        return portal

    async def added(self, client: DiscordClient, payload: discord.RawReactionActionEvent) -> None:
        portal = await self._portal(client, payload)
        if portal is None:
            return
        member = payload.member  # the account's name, as for messages (roles.py)
        name = (member.global_name or member.name) if member is not None else None
        event = RemoteReaction(
            portal=portal,
            sender=self.connector.personal.sender(
                client, payload.user_id, name, payload.guild_id is not None
            ),
            target_id=RemoteMessageID(str(payload.message_id)),
            **self.emoji_fields(payload.emoji),
        )
        await self.connector.bridge.queue_remote_event(client.login.id, event)

    async def removed(self, client: DiscordClient, payload: discord.RawReactionActionEvent) -> None:
        portal = await self._portal(client, payload)
        if portal is None:
            return
        fields = self.emoji_fields(payload.emoji)
        event = RemoteReactionRemove(
            portal=portal,
            sender=self.connector.personal.sender(
                client, payload.user_id, None, payload.guild_id is not None
            ),
            target_id=RemoteMessageID(str(payload.message_id)),
            key=fields["key"],
            emoji_id=fields.get("emoji_id"),
        )
        await self.connector.bridge.queue_remote_event(client.login.id, event)

    # -- Matrix -> Discord ----------------------------------------------------------------------

    def discord_emoji(self, key: str, emoji_id: str | None, name: str | None) -> str:
        """The emoji of a Matrix reaction as Discord's REST path takes it."""
        if emoji_id and emoji_id.isdigit():
            name = emoji_name(name or self._names.get(emoji_id))
            self._learn(emoji_id, name)
            return f"{name}:{emoji_id}"
        if unicode_key(key):
            return key
        raise SendRefused("Discord reactions are emoji: a unicode one or this server's own")

    async def send(self, client: DiscordClient, reaction: MatrixReaction) -> MessageResult | None:
        emoji = self.discord_emoji(reaction.key, reaction.emoji_id, reaction.emoji_name)
        await self._call(client, "add_reaction", reaction.portal, reaction.target_id, emoji)
        return None

    async def remove(self, client: DiscordClient, removal: MatrixReactionRemove) -> None:
        emoji = self.discord_emoji(removal.key, removal.emoji_id, None)
        await self._call(client, "remove_own_reaction", removal.portal, removal.target_id, emoji)

    async def _call(
        self, client: DiscordClient, method: str, portal: PortalKey, target: str, emoji: str
    ) -> None:
        if client.is_bot:  # the bot's own user is relayed: a webhook cannot react
            raise SendRefused("reactions of relayed users are not bridged to Discord")
        gateway = client.gateway
        if gateway is None or not portal.id.isdigit() or not str(target).isdigit():
            raise SendRefused("not connected to Discord", retriable=True)
        try:
            await getattr(gateway.http, method)(int(portal.id), int(target), emoji)
        except discord.HTTPException as e:
            if e.code == UNKNOWN_EMOJI:
                raise SendRefused(
                    "Discord does not know this emoji (or you may not use it)"
                ) from None
            if isinstance(e, discord.Forbidden):
                raise SendRefused(
                    "Discord does not let you react here", "m.no_permission"
                ) from None
            raise
