"""Objects as Discord's API and gateway show them: users, members, roles, channels, threads,
guilds (the GUILD_CREATE shape), messages (with attachments served from the fake's cdn),
webhooks. A mixin of ``FakeDiscord``: it reads the fake's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .models import (
    GUILD_FORUM,
    THREAD_TYPES,
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Role,
    User,
    Webhook,
    iso,
    snowflake_time,
)

if TYPE_CHECKING:
    from .server import FakeDiscord


class ApiObjects:
    """The JSON shapes (``self`` is the ``FakeDiscord``)."""

    def user_json(self: FakeDiscord, user: User) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": user.id,
            "username": user.username,
            "global_name": user.global_name,
            "discriminator": "0",
            "avatar": user.avatar,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
        }
        if user.bot:
            data["bot"] = True
        return data

    def role_json(self: FakeDiscord, role: Role) -> dict[str, Any]:
        return {
            "id": role.id,
            "name": role.name,
            "permissions": str(role.permissions),
            "position": role.position,
            "color": role.color,
            "colors": {
                "primary_color": role.color,
                "secondary_color": None,
                "tertiary_color": None,
            },
            "hoist": False,
            "managed": False,
            "mentionable": role.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    def member_json(self: FakeDiscord, member: Member, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nick": member.nick,
            "avatar": member.avatar,
            "roles": list(member.roles),
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "banner": None,
        }
        if with_user:
            data["user"] = self.user_json(self.users[member.user_id])
        return data

    def channel_json(
        self: FakeDiscord, channel: Channel, viewer: str | None = None
    ) -> dict[str, Any]:
        """The channel; a DM's ``recipients`` leave out ``viewer`` (the caller), as Discord's do."""
        data: dict[str, Any] = {
            "id": channel.id,
            "type": channel.type,
            "flags": 0,
            "last_message_id": channel.last_message_id,
        }
        if channel.is_dm:
            data["recipients"] = [
                self.user_json(self.users[uid]) for uid in channel.recipients if uid != viewer
            ]
            if channel.type == 3:
                data.update(name=channel.name, owner_id=channel.owner_id, icon=None)
            return data
        data.update(
            guild_id=channel.guild_id,
            name=channel.name,
            position=channel.position,
            parent_id=channel.parent_id,
            nsfw=channel.nsfw,
            permission_overwrites=[
                {"id": o.id, "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
                for o in channel.overwrites.values()
            ],
        )
        if channel.type in THREAD_TYPES:
            data.update(
                owner_id=channel.owner_id,
                message_count=channel.message_count,
                member_count=1,
                total_message_sent=channel.message_count,
                rate_limit_per_user=0,
                thread_metadata={
                    "archived": channel.archived,
                    "auto_archive_duration": 4320,
                    "archive_timestamp": iso(snowflake_time(channel.id)),
                    "locked": False,
                    "create_timestamp": iso(snowflake_time(channel.id)),
                },
                applied_tags=[],
            )
            del data["permission_overwrites"]
        elif channel.type == 2:
            data.update(bitrate=64000, user_limit=0, rtc_region=None, rate_limit_per_user=0)
        elif channel.type != 4:
            data.update(topic=channel.topic, rate_limit_per_user=0)
        if channel.type == GUILD_FORUM:
            data.update(
                available_tags=[],
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
                default_thread_rate_limit_per_user=0,
            )
        return data

    def guild_json(self: FakeDiscord, guild: Guild) -> dict[str, Any]:
        """The guild as ``GET /guilds/{id}`` shows it."""
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": guild.icon,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": guild.owner_id,
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [self.role_json(r) for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "approximate_member_count": len(guild.members),
        }

    def guild_create_json(self: FakeDiscord, guild: Guild, viewer: User) -> dict[str, Any]:
        """GUILD_CREATE for ``viewer``: channels it can see, active threads, roles, members
        (up to the fake's ``member_limit``; ``large`` past ``large_threshold``)."""
        data = self.guild_json(guild)
        visible = [
            self.channels[c] for c in guild.channels if self.can_view(viewer, self.channels[c])
        ]
        members = list(guild.members.values())
        data.update(
            unavailable=False,
            large=guild.large or len(members) > self.large_threshold,
            member_count=len(members),
            joined_at=guild.members[viewer.id].joined_at if viewer.id in guild.members else None,
            channels=[self.channel_json(c) for c in visible if not c.is_thread],
            threads=[self.channel_json(c) for c in visible if c.is_thread and not c.archived],
            members=[self.member_json(m) for m in members[: self.member_limit]],
            voice_states=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return data

    def attachment_json(self: FakeDiscord, att: Attachment) -> dict[str, Any]:
        url = att.url or (
            f"{self.cdn_url}/attachments/{att.channel_id}/{att.id}/{quote(att.filename)}"
        )
        data: dict[str, Any] = {
            "id": att.id,
            "filename": att.filename,
            "size": len(att.data),
            "url": url,
            "proxy_url": url.replace(self.cdn_url, self.media_url, 1),
            "content_type": att.content_type,
            "description": att.description,
        }
        if att.width is not None:
            data.update(width=att.width, height=att.height)
        return data

    def message_json(
        self: FakeDiscord, msg: Message, *, content: bool = True, referenced: bool = True
    ) -> dict[str, Any]:
        """The message; ``content=False`` empties what needs the MESSAGE_CONTENT intent."""
        channel = self.channels[msg.channel_id]
        if msg.webhook_id is not None:
            author: dict[str, Any] = {
                "id": msg.webhook_id,
                "username": msg.webhook_name or "",
                "avatar": msg.webhook_avatar,
                "discriminator": "0000",
                "global_name": None,
                "bot": True,
                "public_flags": 0,
            }
        else:
            author = self.user_json(self.users[msg.author_id])
        data: dict[str, Any] = {
            "id": msg.id,
            "channel_id": msg.channel_id,
            "type": msg.type,
            "author": author,
            "content": msg.content if content else "",
            "timestamp": msg.timestamp,
            "edited_timestamp": msg.edited_timestamp,
            "tts": msg.tts,
            "mention_everyone": msg.mention_everyone,
            "mentions": [self.user_json(self.users[u]) for u in msg.mentions if u in self.users],
            "mention_roles": list(msg.mention_roles),
            "attachments": [self.attachment_json(a) for a in msg.attachments] if content else [],
            "embeds": list(msg.embeds) if content else [],
            "pinned": msg.pinned,
            "flags": msg.flags,
            "components": [],
        }
        if msg.webhook_id is not None:
            data["webhook_id"] = msg.webhook_id
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.sticker is not None:
            data["sticker_items"] = [msg.sticker]
        if msg.reactions:
            data["reactions"] = [
                {
                    "emoji": msg.emoji[key],
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": False,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for key, users in msg.reactions.items()
                if users
            ]
        if msg.reference is not None:
            data["message_reference"] = dict(msg.reference)
            if referenced and msg.type == 19:
                ref = self.find_message(msg.reference.get("message_id"))
                data["referenced_message"] = (
                    self.message_json(ref, content=content, referenced=False) if ref else None
                )
        if msg.thread_id is not None and msg.thread_id in self.channels:
            data["thread"] = self.channel_json(self.channels[msg.thread_id])
        if channel.guild_id is not None:
            data["guild_id"] = channel.guild_id
            guild = self.guilds[channel.guild_id]
            member = guild.members.get(msg.author_id)
            if member is not None and msg.webhook_id is None:
                data["member"] = self.member_json(member, with_user=False)
        return data

    def webhook_json(
        self: FakeDiscord, hook: Webhook, *, with_token: bool = True
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": hook.id,
            "type": 1,
            "guild_id": hook.guild_id,
            "channel_id": hook.channel_id,
            "name": hook.name,
            "avatar": hook.avatar,
            "application_id": hook.application_id,
            "user": self.user_json(self.users[hook.creator_id]),
        }
        if with_token:
            data["token"] = hook.token
            data["url"] = f"{self.api_url}/webhooks/{hook.id}/{hook.token}"
        return data
