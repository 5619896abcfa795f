"""Guild roles as power levels, and members' profiles as their ghosts'.

A member whose roles grant ADMINISTRATOR (and the guild's owner) gets power level 100 in the
guild's rooms (the runtime caps it below the bridge bot's), a moderator (a role that may
manage messages, kick, ban, time out, manage channels, roles or the server) 50, anyone else
0. The bridge keeps no member cache: the guild's members with power are found once by paging
its member list, then followed through GUILD_MEMBER_UPDATE (a member's roles) and
GUILD_ROLE_UPDATE / DELETE (a role's permissions: the list is paged again).

Names: Matrix shows a ghost one name everywhere (its profile), so a ghost is named by its
Discord account (global display name, else user name) and its account avatar; per-guild
nicknames and guild avatars are not shown (the runtime has no per-room member names). A
changed account profile reaches the ghost (RemoteUserInfoChange) from the GUILD_MEMBER_UPDATE
Discord sends for it (bots get no USER_UPDATE about other users).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.events import (
    ChatMember,
    EventSender,
    PortalKey,
    RemoteChatID,
    RemoteMembership,
    RemoteUserInfoChange,
)

from .ids import portal_key, user_rid
from .users import user_info_of

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.roles")

ADMIN_LEVEL = 100
MODERATOR_LEVEL = 50
#: Permissions that make a moderator.
MODERATOR_PERMISSIONS = discord.Permissions(
    manage_messages=True,
    kick_members=True,
    ban_members=True,
    moderate_members=True,
    manage_channels=True,
    manage_roles=True,
    manage_guild=True,
).value
#: Members fetched per request when paging a guild's member list (Discord's maximum).
PAGE = 1000


def level_of(guild: discord.Guild, user_id: int, role_ids: list[int]) -> int:
    """The power level of a member with ``role_ids`` (``@everyone``'s own permissions raise
    nobody: they are everyone's)."""
    if user_id == guild.owner_id:
        return ADMIN_LEVEL
    perms = 0
    for rid in role_ids:
        role = guild.get_role(rid)
        if role is not None and rid != guild.id:
            perms |= role.permissions.value
    if perms & discord.Permissions(administrator=True).value:
        return ADMIN_LEVEL
    return MODERATOR_LEVEL if perms & MODERATOR_PERMISSIONS else 0


def _key(guild_id: Any) -> str:
    return f"guild-roles:{guild_id}"


def _guild_of_member_update(args: tuple[Any, ...]) -> str:
    data = args[0]
    return _key(data.get("guild_id") if isinstance(data, dict) else None)


class Roles:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        #: guild id -> {user id: level} of its members with power (paged in once).
        self._levels: dict[int, dict[int, int]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        #: user id -> (name, avatar) last reported for the ghost.
        self._profiles: dict[int, tuple[str | None, str | None]] = {}
        inbound = connector.inbound
        # one order per guild: a member's new roles and the roles' new permissions are
        # applied as the gateway said them
        inbound.register("raw_member_update", self.on_member_update, _guild_of_member_update)
        inbound.register("guild_role_update", self.on_role_change, lambda a: _key(a[-1].guild.id))
        inbound.register("guild_role_delete", self.on_role_change, lambda a: _key(a[-1].guild.id))

    # -- levels -------------------------------------------------------------------------------

    async def levels(self, client: DiscordClient, guild: discord.Guild) -> dict[int, int]:
        """The guild's members with power and their levels (paged in at first need, by a
        bot bridging the guild: a personal login may not list members)."""
        lock = self._locks.setdefault(guild.id, asyncio.Lock())
        async with lock:
            known = self._levels.get(guild.id)
            if known is not None:
                return known
            bots = [client] if client.is_bot else self.connector.bots_of_guild(guild.id)
            if not bots:
                return {}
            try:
                known = self._levels[guild.id] = await self._scan(bots[0], guild)
            except discord.HTTPException as e:  # asked again for the next room
                log.warning("Members of guild %s not listed (%s): no power levels", guild.id, e)
                return {}
            return known

    async def _scan(self, client: DiscordClient, guild: discord.Guild) -> dict[int, int]:
        gateway = client.gateway
        assert gateway is not None
        found: dict[int, int] = {}
        if guild.owner_id is not None:
            found[guild.owner_id] = ADMIN_LEVEL
        after: int | None = None
        while True:
            page = await gateway.http.get_members(guild.id, PAGE, after)
            for data in page:
                try:
                    uid = int(data["user"]["id"])
                    level = level_of(guild, uid, [int(r) for r in data.get("roles") or []])
                except (KeyError, TypeError, ValueError):
                    continue
                if level:
                    found[uid] = level
            if len(page) < PAGE:
                break
            after = int(page[-1]["user"]["id"])
        return found

    async def members(self, client: DiscordClient, guild: discord.Guild) -> list[ChatMember]:
        """The guild's members with power, for a new room's member list."""
        return [
            ChatMember(remote_id=user_rid(uid), power_level=level)
            for uid, level in (await self.levels(client, guild)).items()
            if not self.connector.own_account(uid)  # the bridge's bots are no ghosts
        ]

    async def _rooms(self, guild: discord.Guild) -> list[PortalKey]:
        rooms = []
        for channel in self.connector.guilds.portal_channels(guild):
            portal = portal_key(channel.id)
            if await self.connector.bridge.has_room(portal):
                rooms.append(portal)
        return rooms

    async def _apply(
        self, client: DiscordClient, guild: discord.Guild, new: dict[int, int]
    ) -> None:
        """Tell the guild's rooms of every member whose level differs from ``new``."""
        old = self._levels.get(guild.id, {})
        changed = {
            u: new.get(u, 0)
            for u in set(old) | set(new)
            if old.get(u, 0) != new.get(u, 0) and not self.connector.own_account(u)
        }
        self._levels[guild.id] = new
        if not changed:
            return
        for portal in await self._rooms(guild):
            for uid, level in changed.items():
                await self.connector.bridge.queue_remote_event(
                    client.login.id,
                    RemoteMembership(
                        portal, target=user_rid(uid), membership="power", power_level=level
                    ),
                )

    # -- gateway events -----------------------------------------------------------------------

    async def on_member_update(self, client: DiscordClient, data: Any) -> None:
        """GUILD_MEMBER_UPDATE (raw: no member cache): the member's power in the guild's
        rooms, and their account's name and avatar."""
        gateway = client.gateway
        if gateway is None or not isinstance(data, dict):
            return
        try:
            guild_id = int(data["guild_id"])
            user = data["user"]
            user_id = int(user["id"])
            role_ids = [int(r) for r in data.get("roles") or []]
        except (KeyError, TypeError, ValueError):
            log.warning("A malformed GUILD_MEMBER_UPDATE was skipped")
            return
        guild = gateway.get_guild(guild_id)
        if guild is None or not client.is_bot or not client.bridges_guild(guild_id):
            return
        await self._profile(client, user)
        lock = self._locks.setdefault(guild.id, asyncio.Lock())
        async with lock:
            known = self._levels.get(guild.id)
            if known is None:  # nothing asked for levels yet: paged in when a room needs them
                return
            level = level_of(guild, user_id, role_ids)
            if known.get(user_id, 0) == level:
                return
            new = dict(known)
            if level:
                new[user_id] = level
            else:
                new.pop(user_id, None)
            await self._apply(client, guild, new)

    async def on_role_change(self, client: DiscordClient, *args: Any) -> None:
        """A role's permissions changed (or it was deleted): the guild's levels again."""
        role = args[-1]
        guild = role.guild
        if not client.is_bot or not client.bridges_guild(guild.id):
            return
        if len(args) == 2 and args[0].permissions == args[1].permissions:
            return
        lock = self._locks.setdefault(guild.id, asyncio.Lock())
        async with lock:
            if guild.id not in self._levels:
                return
            try:
                new = await self._scan(client, guild)
            except discord.HTTPException as e:
                log.warning("Members of guild %s not listed again (%s)", guild.id, e)
                return
            await self._apply(client, guild, new)

    async def _profile(self, client: DiscordClient, data: dict[str, Any]) -> None:
        """The account's name and avatar as a member update shows them: the ghost follows
        when they differ from what was last reported."""
        gateway = client.gateway
        assert gateway is not None
        try:
            user = discord.User(state=gateway._connection, data=data)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return
        info = user_info_of(user)
        # no avatar: "" removes the ghost's; one not on an allowed host: None leaves it
        avatar = (
            "" if info.avatar_url is None else self.connector.media.allowed_or_none(info.avatar_url)
        )
        seen = (info.name, avatar)
        if self._profiles.get(user.id) == seen:
            return
        self._profiles[user.id] = seen
        await self.connector.bridge.queue_remote_event(
            client.login.id,
            RemoteUserInfoChange(
                PortalKey(RemoteChatID("")),
                sender=EventSender(remote_id=user_rid(user.id)),
                name=info.name,
                avatar_url=avatar,
            ),
        )
