"""Setting the fake's world up: bots, users, guilds, roles, members, channels, DMs, permission
overwrites; and the permission arithmetic Discord does (base permissions from @everyone and
roles, owner and ADMINISTRATOR, then @everyone / role / member overwrites)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .models import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    DEFAULT_EVERYONE,
    DM,
    GROUP_DM,
    VIEW_CHANNEL,
    Channel,
    Guild,
    Member,
    Overwrite,
    Role,
    User,
    iso,
    snowflake_time,
)

if TYPE_CHECKING:
    from .server import FakeDiscord


def cid(obj: Any) -> str:
    """An id from an object with ``.id`` or an id itself."""
    return str(getattr(obj, "id", obj))


class WorldSetup:
    """The ``add_*`` methods (``self`` is the ``FakeDiscord``)."""

    def add_bot(
        self: FakeDiscord, name: str, *, token: str | None = None, privileged_intents: bool = True
    ) -> User:
        """A bot user and its application; its token is ``user.token`` (send ``Bot <token>``)."""
        user = User(
            id=self.ids.next(),
            username=name,
            bot=True,
            token=token or ".".join(secrets.token_urlsafe(n) for n in (18, 5, 27)),
            privileged_intents=privileged_intents,
        )
        user.application_id = user.id  # as for bots made since 2019: application id == bot id
        self.users[user.id] = user
        self.tokens[user.token] = user.id
        return user

    def add_user(
        self: FakeDiscord,
        name: str,
        *,
        token: str | None = None,
        global_name: str | None = None,
        avatar: str | bytes | None = None,
    ) -> User:
        """A person; with ``token`` it can log in with that (bare) user token."""
        user = User(
            id=self.ids.next(),
            username=name,
            global_name=global_name,
            avatar=self.add_image(avatar),
            token=token,
        )
        self.users[user.id] = user
        if token:
            self.tokens[token] = user.id
        return user

    def add_guild(
        self: FakeDiscord, name: str, owner: Any, *, icon: str | bytes | None = None
    ) -> Guild:
        """A guild owned by ``owner`` (a member of it), with its @everyone role (id = guild id)."""
        guild = Guild(id=self.ids.next(), name=name, owner_id=cid(owner), icon=self.add_image(icon))
        guild.roles[guild.id] = Role(
            id=guild.id, guild_id=guild.id, name="@everyone", permissions=DEFAULT_EVERYONE
        )
        self.guilds[guild.id] = guild
        self._put_member(guild, cid(owner))
        return guild

    def add_role(
        self: FakeDiscord, guild: Any, name: str, *, permissions: int = 0, mentionable: bool = False
    ) -> Role:
        g = self.guilds[cid(guild)]
        role = Role(
            id=self.ids.next(),
            guild_id=g.id,
            name=name,
            permissions=permissions,
            position=len(g.roles),
            mentionable=mentionable,
        )
        g.roles[role.id] = role
        self.dispatch_guild(
            g.id, "GUILD_ROLE_CREATE", {"guild_id": g.id, "role": self.role_json(role)}
        )
        return role

    def add_channel(
        self: FakeDiscord,
        guild: Any,
        name: str,
        *,
        type: int = 0,
        topic: str | None = None,
        parent: Any = None,
        nsfw: bool = False,
    ) -> Channel:
        """A guild channel: 0 text, 2 voice, 4 category, 5 announcement, 15 forum."""
        g = self.guilds[cid(guild)]
        channel = Channel(
            id=self.ids.next(),
            type=type,
            guild_id=g.id,
            name=name,
            topic=topic,
            parent_id=cid(parent) if parent is not None else None,
            position=len(g.channels),
            nsfw=nsfw,
        )
        self.channels[channel.id] = channel
        g.channels.append(channel.id)
        self.message_store[channel.id] = []
        self.dispatch_channel(channel, "CHANNEL_CREATE", self.channel_json(channel))
        return channel

    def add_member(
        self: FakeDiscord,
        guild: Any,
        user: Any,
        *,
        nick: str | None = None,
        avatar: str | bytes | None = None,
        roles: Any = (),
    ) -> Member:
        """``user`` joins ``guild`` (GUILD_MEMBER_ADD to sessions with the GUILD_MEMBERS intent;
        a bot joining gets GUILD_CREATE on its live sessions)."""
        g = self.guilds[cid(guild)]
        member = self._put_member(
            g, cid(user), nick=nick, avatar=self.add_image(avatar), roles=[cid(r) for r in roles]
        )
        data = self.member_json(member)
        data["guild_id"] = g.id
        self.dispatch_guild(g.id, "GUILD_MEMBER_ADD", data, exclude_user=member.user_id)
        self.guild_joined(g, member.user_id)
        return member

    def _put_member(
        self: FakeDiscord,
        guild: Guild,
        user_id: str,
        *,
        nick: str | None = None,
        avatar: str | None = None,
        roles: list[str] | None = None,
    ) -> Member:
        member = Member(
            user_id=user_id,
            guild_id=guild.id,
            nick=nick,
            avatar=avatar,
            roles=list(roles or []),
            joined_at=iso(snowflake_time(self.ids.next())),
        )
        guild.members[user_id] = member
        return member

    def remove_member(self: FakeDiscord, guild: Any, user: Any) -> None:
        """``user`` leaves (GUILD_MEMBER_REMOVE; a bot removed gets GUILD_DELETE)."""
        g = self.guilds[cid(guild)]
        uid = cid(user)
        if uid not in g.members:
            return
        self.dispatch_guild(
            g.id, "GUILD_MEMBER_REMOVE", {"guild_id": g.id, "user": self.user_json(self.users[uid])}
        )
        del g.members[uid]
        self.dispatch_to_user(uid, "GUILD_DELETE", {"id": g.id})

    def add_dm(self: FakeDiscord, user_a: Any, user_b: Any) -> Channel:
        """The DM channel of two users (the same one if it exists)."""
        pair = sorted((cid(user_a), cid(user_b)))
        for channel in self.channels.values():
            if channel.type == DM and sorted(channel.recipients) == pair:
                return channel
        channel = Channel(id=self.ids.next(), type=DM, recipients=pair)
        self.channels[channel.id] = channel
        self.message_store[channel.id] = []
        return channel

    def add_group_dm(
        self: FakeDiscord, owner: Any, *users: Any, name: str | None = None
    ) -> Channel:
        members = [cid(owner), *(cid(u) for u in users)]
        channel = Channel(
            id=self.ids.next(), type=GROUP_DM, recipients=members, owner_id=cid(owner), name=name
        )
        self.channels[channel.id] = channel
        self.message_store[channel.id] = []
        return channel

    def set_overwrite(
        self: FakeDiscord, channel: Any, target: Any, *, allow: int = 0, deny: int = 0
    ) -> None:
        """A permission overwrite on ``channel`` for a role (or the guild: @everyone) or a user."""
        ch = self.channels[cid(channel)]
        tid = cid(target)
        kind = 0 if ch.guild_id and (tid in self.guilds[ch.guild_id].roles) else 1
        ch.overwrites[tid] = Overwrite(id=tid, type=kind, allow=allow, deny=deny)
        self.dispatch_channel(ch, "CHANNEL_UPDATE", self.channel_json(ch))

    # --- permissions ------------------------------------------------------------------------

    def permissions(self: FakeDiscord, user: Any, channel: Any) -> int:
        """``user``'s permissions in ``channel`` (threads take their parent's)."""
        ch = self.channels[cid(channel)]
        uid = cid(user)
        if ch.is_dm:
            return ALL_PERMISSIONS & ~ADMINISTRATOR if uid in ch.recipients else 0
        if ch.is_thread and ch.parent_id:
            ch = self.channels[ch.parent_id]
        guild = self.guilds[ch.guild_id or ""]
        member = guild.members.get(uid)
        if member is None:
            return 0
        if guild.owner_id == uid:
            return ALL_PERMISSIONS
        perms = guild.roles[guild.id].permissions
        for rid in member.roles:
            if rid in guild.roles:
                perms |= guild.roles[rid].permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        chain = [ch]
        if ch.parent_id and ch.parent_id in self.channels and not ch.overwrites:
            chain = [self.channels[ch.parent_id]]  # a channel synced with its category
        for c in chain:
            everyone = c.overwrites.get(guild.id)
            if everyone:
                perms = (perms & ~everyone.deny) | everyone.allow
            allow = deny = 0
            for rid in member.roles:
                ow = c.overwrites.get(rid)
                if ow:
                    allow |= ow.allow
                    deny |= ow.deny
            perms = (perms & ~deny) | allow
            mine = c.overwrites.get(uid)
            if mine:
                perms = (perms & ~mine.deny) | mine.allow
        return perms

    def can_view(self: FakeDiscord, user: Any, channel: Any) -> bool:
        return bool(self.permissions(user, channel) & VIEW_CHANNEL)
