"""The Discord connector: guilds through a bot, people through their own accounts.

A bot login (``login discord bot``) receives the events of the guilds its user bridges
(``discord bridge-guild``) and relays Matrix users through a webhook per channel. A person's
own account (``login discord user``) makes the bridge speak as them (double puppeting).

Portals are guild channels (one per channel, shared by every login; threads and forum posts
are threads of their channel's room), DMs and group DMs (one per personal login). Ghosts are
``@_discord_<user id>``; see :mod:`.ids`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

import discord

from bridgekit.contract.connector import (
    BridgeAPI,
    Command,
    DefaultRelay,
    LoginFlow,
    LoginInfo,
    LoginProcess,
    NetworkClient,
    NetworkConnector,
)
from bridgekit.contract.events import EventSender, PortalKey

from . import config as cfg
from .api import point_discord_py
from .catchup import CatchUp
from .channels import Channels
from .client import DiscordBotClient, DiscordClient
from .deletes import Deletes
from .dms import DirectChats
from .edits import Edits
from .emptied import Emptied
from .guilds import Guilds
from .ids import portal_key
from .inbound import Inbound, portal_channel_id
from .login import BOT_FLOW, USER_FLOW, DiscordLogin
from .media import DiscordMedia
from .outbound import Outbound
from .personal import Personal
from .reactions import Reactions
from .reconnect import Policy
from .render import Render
from .replies import Replies
from .roles import Roles
from .start_chat import DiscordStartChat
from .state import BOT, DiscordLoginMeta, DiscordLoginState
from .threads import Threads
from .typing_notices import Typing
from .uploads import Uploads
from .users import Users
from .webhooks import Webhooks

log = logging.getLogger("bridgekit.discord")

#: Ids of events remembered per process, to recognise the same event reaching two bot logins
#: of one guild (and a message seen again after a RESUME or a catch-up).
SEEN_EVENTS = 10_000


class DiscordConnector(NetworkConnector, DefaultRelay, DiscordStartChat):
    name: ClassVar[str] = "discord"
    display_name: ClassVar[str] = "Discord"
    ghost_template: ClassVar[str] = "_discord_{id}"
    default_config: ClassVar[Mapping[str, Any]] = cfg.DEFAULTS
    login_metadata_type: ClassVar[type | None] = DiscordLoginState

    def __init__(self, bridge: BridgeAPI, config: Mapping[str, Any]) -> None:
        super().__init__(bridge, config)
        self.clients: dict[str, DiscordClient] = {}
        self.inbound = Inbound(self)
        self.outbound = Outbound(self)
        self.render = Render(self)
        self.guilds = Guilds(self)
        self.users = Users(self)
        self.webhooks = Webhooks(self)
        self.media = DiscordMedia(self)
        self.uploads = Uploads(self)
        self.personal = Personal(self)
        self.dms = DirectChats(self)
        self.reactions = Reactions(self)
        self.typing = Typing(self)
        self.reactions.register()
        self.typing.register()
        self.catchup = CatchUp(self)
        self.emptied = Emptied(self)
        self.reconnect_policy = Policy.from_config(config.get("reconnect"))
        self.threads = Threads(self)
        self.channels = Channels(self)
        self.roles = Roles(self)
        self.replies = Replies(self)
        self.edits = Edits(self)
        self.deletes = Deletes(self)
        self._seen: OrderedDict[str, None] = OrderedDict()

    # -- config --------------------------------------------------------------------------------

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return cfg.validate(config)

    @classmethod
    def namespace_templates(cls, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        return [str(cfg.setting(config, "ghost_template"))], []

    async def start(self) -> None:
        point_discord_py(self.config)

    async def stop(self) -> None:
        await self.inbound.stop()

    # -- logins --------------------------------------------------------------------------------

    def login_flows(self) -> list[LoginFlow]:
        return [
            LoginFlow(BOT_FLOW, "Discord bot", "a bot token (bridges the servers it is in)"),
            LoginFlow(
                USER_FLOW, "Your Discord account", "your own token (against Discord's terms)"
            ),
        ]

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        if flow_id not in (BOT_FLOW, USER_FLOW):
            raise ValueError(f"unknown login flow {flow_id!r}: bot or user")
        return DiscordLogin(self, user_mxid, flow_id)

    async def load_login(self, login: LoginInfo) -> NetworkClient:
        kind = self.meta_from_dict(login.metadata).kind
        client = (DiscordBotClient if kind == BOT else DiscordClient)(self, login)
        self.clients[login.id] = client
        return client

    async def logout(self, login: LoginInfo) -> None:
        self.clients.pop(login.id, None)

    def commands(self) -> list[Command]:
        return self.guilds.commands()

    @staticmethod
    def meta_from_dict(data: Mapping[str, Any]) -> DiscordLoginMeta:
        known = {f.name for f in dataclasses.fields(DiscordLoginMeta)}
        return DiscordLoginMeta(**{k: v for k, v in data.items() if k in known})

    @staticmethod
    def meta_to_dict(meta: DiscordLoginMeta) -> dict[str, Any]:
        return dataclasses.asdict(meta)

    def find_login(self, user_mxid: str, remote_id: str, kind: str) -> str | None:
        """The id of ``user_mxid``'s existing login of the same Discord account, if any (a
        new login replaces it)."""
        for client in self.clients.values():
            login = client.login
            if (login.user_mxid, login.remote_id, client.meta.kind) == (user_mxid, remote_id, kind):
                return login.id
        return None

    # -- who is who ------------------------------------------------------------------------------

    def bots_of_guild(self, guild_id: int) -> list[DiscordClient]:
        return [
            c
            for c in self.clients.values()
            if c.is_bot and not c.dead and c.bridges_guild(guild_id) and c.gateway is not None
        ]

    def default_relay_login(self, portal: PortalKey) -> str | None:
        if portal.receiver or not portal.id.isdigit():
            return None
        for client in self.clients.values():
            if not client.is_bot or client.dead:
                continue
            channel = client.channel(int(portal.id))
            guild = getattr(channel, "guild", None)
            if guild is not None and client.bridges_guild(guild.id):
                return client.login.id
        return None

    def own_account(self, user_id: int) -> bool:
        """Whether a Discord user is one of this bridge's logins' accounts (a bot)."""
        return any(c.is_bot and c.meta.user_id == str(user_id) for c in self.clients.values())

    def portal_of(self, client: DiscordClient, channel: Any) -> PortalKey:
        channel_id = portal_channel_id(channel)
        if getattr(channel, "guild", None) is None:  # a DM or group DM: the login's own
            return portal_key(channel_id or 0, client.login.id)
        return portal_key(channel_id or 0)

    def sender_of(
        self, client: DiscordClient, author: discord.abc.User, channel: Any = None
    ) -> EventSender:
        """The sender of what ``author`` did in ``channel`` (None: a guild's, for a bot): a
        personal login's account speaks from its Matrix user (:mod:`.personal`); a guild
        member's nickname and guild avatar are their name and avatar in that room."""
        in_guild = None if channel is None else getattr(channel, "guild", None) is not None
        # The ghost's own name is the account's; a guild nickname and guild avatar are its
        # name and avatar in that guild's rooms only (EventSender.room_name).
        name = author.global_name or author.name
        sender = self.personal.sender(client, author.id, name, in_guild)
        if isinstance(author, discord.Member) and not sender.is_me:
            sender.room_name = author.nick
            if author.guild_avatar is not None:
                sender.room_avatar_url = self.media.allowed_or_none(str(author.guild_avatar.url))
        return sender

    def guild_receiver(self, guild_id: int, channel_id: int) -> DiscordClient | None:
        """The one bot login that bridges a guild channel's reactions and typing (each of
        the guild's bots receives them): the first, by login id, that sees the channel."""
        bots = sorted(self.bots_of_guild(guild_id), key=lambda c: c.login.id)
        seeing = [b for b in bots if b.channel(channel_id) is not None]
        return (seeing or bots or [None])[0]

    def receives(self, client: DiscordClient, guild_id: int | None, channel_id: int) -> bool:
        """Whether ``client`` bridges a raw event (a reaction, typing) of a channel: a DM's
        receiver does; a guild's, only its :meth:`guild_receiver`."""
        if guild_id is None:
            return True
        return self.guild_receiver(guild_id, channel_id) is client

    def raw_channel_key(self, channel_id: int) -> int:
        """The portal channel of a channel id a raw event names: a thread's parent."""
        for client in self.clients.values():
            channel = client.channel(channel_id)
            if channel is not None:
                return portal_channel_id(channel) or channel_id
        return channel_id

    # -- events ----------------------------------------------------------------------------------

    def first_sight(self, key: str) -> bool:
        """True the first time an event key is seen (then remembered, bounded)."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_EVENTS:
            self._seen.popitem(last=False)
        return True

    def was_seen(self, key: str) -> bool:
        """Whether an event key was seen (and so bridged or on its way), without marking it."""
        return key in self._seen

    async def should_bridge(self, client: DiscordClient, message: discord.Message) -> bool:
        """Whether ``client`` bridges ``message``: a guild it bridges, not the bridge's own
        (a bot's message or its webhook's), not seen already (through another bot)."""
        if not await self.is_foreign(client, message):
            return False
        portal = self.portal_of(client, message.channel)
        key = f"m:{portal.receiver}:{message.id}" if portal.receiver else f"m:{message.id}"
        if self.personal.is_echo(message.nonce, portal):  # sent from Matrix, as its user
            self.first_sight(key)
            return False
        return self.first_sight(key)

    async def is_foreign(self, client: DiscordClient, message: discord.Message) -> bool:
        """Whether ``message`` is one ``client`` bridges: a guild it bridges, not the
        bridge's own (a bot's message or its webhook's)."""
        guild = message.guild
        if guild is not None and not client.bridges_guild(guild.id):
            return False  # (a personal login leaves guilds to their bot)
        if self.own_account(message.author.id):
            return False
        channel_id = portal_channel_id(message.channel)
        if message.webhook_id is not None and channel_id is not None:
            if await self.webhooks.is_ours(client, channel_id, message.webhook_id):
                return False
        return True
