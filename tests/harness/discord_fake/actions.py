"""What tests do as Discord users (each stores the change and dispatches what Discord would),
and the message store they share with the REST and webhook routes: creating a message (mention
resolution with ``allowed_mentions``, replies, attachments, stickers, threads), editing,
deleting, reactions, typing, channel / member / user updates, threads and forum posts."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import TYPE_CHECKING, Any

from .models import (
    Attachment,
    Channel,
    Message,
    iso,
)
from .workspace import cid

if TYPE_CHECKING:
    from .server import FakeDiscord

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_UNSET: Any = object()


def emoji_json(emoji: Any) -> dict[str, Any]:
    """A unicode emoji string or a custom one ``{"id", "name", "animated"}`` as Discord shows it."""
    if isinstance(emoji, str):
        if ":" in emoji:  # "name:id" as in the REST path
            name, _, eid = emoji.rpartition(":")
            animated = name.startswith("a:")
            return {"id": eid, "name": name[2:] if animated else name, "animated": animated}
        return {"id": None, "name": emoji}
    return {
        "id": str(emoji["id"]),
        "name": emoji.get("name"),
        "animated": bool(emoji.get("animated")),
    }


def emoji_key(emoji: dict[str, Any]) -> str:
    return emoji["id"] or emoji["name"]


class RemoteActions:
    """``send_message``, ``edit_message``... (``self`` is the ``FakeDiscord``)."""

    # --- the store ---------------------------------------------------------------------------

    def new_message(
        self: FakeDiscord,
        channel: Channel,
        author_id: str,
        content: str = "",
        *,
        files: list[tuple[Any, ...]] | None = None,
        descriptions: list[str | None] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        sticker: dict[str, Any] | None = None,
        reply_to: Any = None,
        allowed_mentions: dict[str, Any] | None = None,
        webhook: Any = None,
        webhook_name: str | None = None,
        webhook_avatar_url: str | None = None,
        nonce: Any = None,
        msg_id: str | None = None,
        type: int | None = None,
    ) -> Message:
        """Stores a message (no dispatch: see ``publish_create``)."""
        msg = Message(
            id=msg_id or self.ids.next(),
            channel_id=channel.id,
            author_id=author_id,
            content=content,
            embeds=list(embeds or []),
            sticker=sticker,
            nonce=nonce,
        )
        for n, (filename, data, ctype, *extra) in enumerate(files or []):
            desc = descriptions[n] if descriptions and n < len(descriptions) else None
            msg.attachments.append(
                Attachment(
                    id=self.ids.next(),
                    channel_id=channel.id,
                    filename=filename,
                    data=data,
                    content_type=ctype,
                    description=desc,
                    **(extra[0] if extra else {}),  # width, height, url (a crafted link)
                )
            )
        if webhook is not None:
            msg.webhook_id = webhook.id
            msg.webhook_name = webhook_name or webhook.name
            msg.webhook_avatar_url = webhook_avatar_url
            msg.webhook_avatar = webhook.avatar
        replied: Message | None = None
        if reply_to is not None:
            replied = self.find_message(reply_to)
            msg.type = 19
            msg.reference = {
                "type": 0,
                "message_id": str(reply_to),
                "channel_id": channel.id,
                **({"guild_id": channel.guild_id} if channel.guild_id else {}),
            }
        if type is not None:
            msg.type = type
        self._resolve_mentions(msg, channel, allowed_mentions, replied)
        self.message_store.setdefault(channel.id, []).append(msg)
        channel.last_message_id = msg.id
        if channel.is_thread:
            channel.message_count += 1
        return msg

    def _resolve_mentions(
        self: FakeDiscord,
        msg: Message,
        channel: Channel,
        allowed: dict[str, Any] | None,
        replied: Message | None,
    ) -> None:
        parse = (
            set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        )
        users_ok = {str(u) for u in (allowed or {}).get("users", [])}
        roles_ok = {str(r) for r in (allowed or {}).get("roles", [])}
        for uid in _USER_MENTION.findall(msg.content):
            if (
                uid in self.users
                and uid not in msg.mentions
                and ("users" in parse or uid in users_ok)
            ):
                msg.mentions.append(uid)
        if channel.guild_id:
            roles = self.guilds[channel.guild_id].roles
            for rid in _ROLE_MENTION.findall(msg.content):
                if (
                    rid in roles
                    and rid not in msg.mention_roles
                    and ("roles" in parse or rid in roles_ok)
                ):
                    msg.mention_roles.append(rid)
        if "everyone" in parse and ("@everyone" in msg.content or "@here" in msg.content):
            msg.mention_everyone = True
        replied_user = allowed.get("replied_user", False) if allowed is not None else True
        if (
            replied is not None
            and replied_user
            and replied.webhook_id is None
            and replied.author_id not in msg.mentions
        ):
            msg.mentions.append(replied.author_id)

    async def publish_create(self: FakeDiscord, msg: Message) -> None:
        """MESSAGE_CREATE, ``echo_delay`` seconds late if set (the gateway lagging behind the
        REST reply); with ``echo_before_reply`` it is written to the sockets before this
        returns (so before the HTTP reply of the send that made it)."""
        if self.echo_delay and not self.echo_before_reply:
            self._spawn(self._late_create(msg))
            return
        if self.echo_delay:
            await asyncio.sleep(self.echo_delay)
        self.dispatch_message("MESSAGE_CREATE", msg)
        if self.echo_before_reply:
            await self.flush_gateway()

    async def _late_create(self: FakeDiscord, msg: Message) -> None:
        await asyncio.sleep(self.echo_delay)
        self.dispatch_message("MESSAGE_CREATE", msg)

    def _channel(self: FakeDiscord, channel: Any) -> Channel:
        return self.channels[cid(channel)]

    def _message(self: FakeDiscord, channel: Channel, message_id: Any) -> Message:
        for msg in self.message_store.get(channel.id, []):
            if msg.id == str(message_id):
                return msg
        raise KeyError(f"no message {message_id} in channel {channel.id}")

    # --- actions -----------------------------------------------------------------------------

    async def send_message(
        self: FakeDiscord,
        channel: Any,
        author: Any,
        content: str = "",
        *,
        attachments: list[tuple[Any, ...]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        sticker: dict[str, Any] | None = None,
        reply_to: Any = None,
        thread: Any = None,
    ) -> dict[str, Any]:
        """``author`` posts in ``channel`` (or in its ``thread``); returns the message JSON.
        ``attachments``: ``(filename, bytes, content type)``, optionally a fourth item, a dict
        of :class:`Attachment` fields (``width``, ``height``; ``url``: a link Discord would
        not make, for tests of crafted links)."""
        target = self._channel(thread if thread is not None else channel)
        if sticker is not None:
            sticker = {
                "id": str(sticker.get("id") or self.ids.next()),
                "name": sticker.get("name", "sticker"),
                "format_type": sticker.get("format_type", 1),
            }
        msg = self.new_message(
            target,
            cid(author),
            content,
            files=attachments,
            embeds=embeds,
            sticker=sticker,
            reply_to=cid(reply_to) if reply_to is not None else None,
        )
        await self.publish_create(msg)
        return self.message_json(msg)

    async def edit_message(
        self: FakeDiscord,
        channel: Any,
        message_id: Any,
        content: str | None = None,
        *,
        embeds: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        msg = self._message(self._channel(channel), message_id)
        self.apply_edit(msg, content, embeds)
        return self.message_json(msg)

    async def unfurl(
        self: FakeDiscord, channel: Any, message_id: Any, embeds: list[dict[str, Any]]
    ) -> None:
        """Discord's link unfurler adds embeds to a message: MESSAGE_UPDATE with the message
        as it is, its ``edited_timestamp`` unchanged (no one edited it)."""
        msg = self._message(self._channel(channel), message_id)
        msg.embeds = list(msg.embeds) + list(embeds)
        self.dispatch_message("MESSAGE_UPDATE", msg)

    def apply_edit(
        self: FakeDiscord,
        msg: Message,
        content: str | None,
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[Attachment] | None = None,
    ) -> None:
        channel = self.channels[msg.channel_id]
        if content is not None:
            msg.content = content
            msg.mentions, msg.mention_roles, msg.mention_everyone = [], [], False
            self._resolve_mentions(msg, channel, None, None)
        if embeds is not None:
            msg.embeds = list(embeds)
        if attachments is not None:
            msg.attachments = attachments
        msg.edited_timestamp = iso(datetime.datetime.now(datetime.UTC))
        self.dispatch_message("MESSAGE_UPDATE", msg)

    async def delete_message(self: FakeDiscord, channel: Any, message_id: Any) -> None:
        self.remove_message(self._message(self._channel(channel), message_id))

    def remove_message(self: FakeDiscord, msg: Message) -> None:
        channel = self.channels[msg.channel_id]
        self.message_store[channel.id].remove(msg)
        self.deleted.append(msg)
        data: dict[str, Any] = {"id": msg.id, "channel_id": channel.id}
        if channel.guild_id:
            data["guild_id"] = channel.guild_id
        self.dispatch_channel(channel, "MESSAGE_DELETE", data)

    async def delete_messages(self: FakeDiscord, channel: Any, message_ids: list[Any]) -> None:
        """Bulk delete (MESSAGE_DELETE_BULK)."""
        ch = self._channel(channel)
        msgs = [self._message(ch, m) for m in message_ids]
        for msg in msgs:
            self.message_store[ch.id].remove(msg)
            self.deleted.append(msg)
        data: dict[str, Any] = {"ids": [m.id for m in msgs], "channel_id": ch.id}
        if ch.guild_id:
            data["guild_id"] = ch.guild_id
        self.dispatch_channel(ch, "MESSAGE_DELETE_BULK", data)

    def _reaction_event(
        self: FakeDiscord, msg: Message, user_id: str, emoji: dict[str, Any]
    ) -> dict[str, Any]:
        channel = self.channels[msg.channel_id]
        data: dict[str, Any] = {
            "user_id": user_id,
            "channel_id": channel.id,
            "message_id": msg.id,
            "emoji": emoji,
            "burst": False,
            "type": 0,
        }
        if channel.guild_id:
            data["guild_id"] = channel.guild_id
        return data

    def react(self: FakeDiscord, msg: Message, user_id: str, emoji: Any, add: bool) -> bool:
        """Adds or removes one reaction; False when nothing changed (no dispatch then)."""
        ej = emoji_json(emoji)
        key = emoji_key(ej)
        users = msg.reactions.setdefault(key, [])
        if add == (user_id in users):
            return False
        channel = self.channels[msg.channel_id]
        if add:
            users.append(user_id)
            msg.emoji[key] = ej
            data = self._reaction_event(msg, user_id, ej)
            data["message_author_id"] = msg.webhook_id or msg.author_id
            if channel.guild_id and user_id in self.guilds[channel.guild_id].members:
                data["member"] = self.member_json(self.guilds[channel.guild_id].members[user_id])
            self.dispatch_channel(channel, "MESSAGE_REACTION_ADD", data)
        else:
            users.remove(user_id)
            self.dispatch_channel(
                channel, "MESSAGE_REACTION_REMOVE", self._reaction_event(msg, user_id, ej)
            )
        return True

    async def add_reaction(
        self: FakeDiscord, channel: Any, message_id: Any, user: Any, emoji: Any
    ) -> None:
        self.react(self._message(self._channel(channel), message_id), cid(user), emoji, True)

    async def remove_reaction(
        self: FakeDiscord, channel: Any, message_id: Any, user: Any, emoji: Any
    ) -> None:
        self.react(self._message(self._channel(channel), message_id), cid(user), emoji, False)

    async def typing(self: FakeDiscord, channel: Any, user: Any) -> None:
        self.start_typing(self._channel(channel), cid(user))

    def start_typing(self: FakeDiscord, channel: Channel, user_id: str) -> None:
        data: dict[str, Any] = {
            "channel_id": channel.id,
            "user_id": user_id,
            "timestamp": int(datetime.datetime.now(datetime.UTC).timestamp()),
        }
        if channel.guild_id:
            data["guild_id"] = channel.guild_id
            member = self.guilds[channel.guild_id].members.get(user_id)
            if member is not None:
                data["member"] = self.member_json(member)
        self.dispatch_channel(channel, "TYPING_START", data, exclude_user=user_id)

    async def update_channel(
        self: FakeDiscord, channel: Any, *, name: Any = _UNSET, topic: Any = _UNSET
    ) -> dict[str, Any]:
        ch = self._channel(channel)
        self.change_channel(
            ch, {k: v for k, v in (("name", name), ("topic", topic)) if v is not _UNSET}
        )
        return self.channel_json(ch)

    def change_channel(self: FakeDiscord, ch: Channel, changes: dict[str, Any]) -> None:
        for key in ("name", "topic", "archived", "nsfw"):
            if key in changes:
                setattr(ch, key, changes[key])
        self.dispatch_channel(
            ch, "THREAD_UPDATE" if ch.is_thread else "CHANNEL_UPDATE", self.channel_json(ch)
        )

    async def delete_channel(self: FakeDiscord, channel: Any) -> None:
        ch = self._channel(channel)
        data = self.channel_json(ch)
        self.dispatch_channel(ch, "THREAD_DELETE" if ch.is_thread else "CHANNEL_DELETE", data)
        del self.channels[ch.id]
        if ch.guild_id:
            self.guilds[ch.guild_id].channels.remove(ch.id)
        starter = self.find_message(ch.id) if ch.is_thread else None
        if starter is not None and starter.thread_id == ch.id:
            starter.thread_id = None  # a new thread may be started from it

    async def update_member(
        self: FakeDiscord,
        guild: Any,
        user: Any,
        *,
        nick: Any = _UNSET,
        avatar: Any = _UNSET,
        roles: Any = _UNSET,
    ) -> None:
        g = self.guilds[cid(guild)]
        member = g.members[cid(user)]
        if nick is not _UNSET:
            member.nick = nick
        if avatar is not _UNSET:
            member.avatar = self.add_image(avatar)
        if roles is not _UNSET:
            member.roles = [cid(r) for r in roles]
        self._member_update(g.id, member.user_id)

    def _member_update(self: FakeDiscord, guild_id: str, user_id: str) -> None:
        member = self.guilds[guild_id].members[user_id]
        data = self.member_json(member) | {"guild_id": guild_id}
        self.dispatch_guild(guild_id, "GUILD_MEMBER_UPDATE", data)

    async def update_role(
        self: FakeDiscord, guild: Any, role: Any, *, name: Any = _UNSET, permissions: Any = _UNSET
    ) -> None:
        g = self.guilds[cid(guild)]
        r = g.roles[cid(role)]
        if name is not _UNSET:
            r.name = name
        if permissions is not _UNSET:
            r.permissions = permissions
        self.dispatch_guild(
            g.id, "GUILD_ROLE_UPDATE", {"guild_id": g.id, "role": self.role_json(r)}
        )

    async def delete_role(self: FakeDiscord, guild: Any, role: Any) -> None:
        g = self.guilds[cid(guild)]
        r = g.roles.pop(cid(role))
        for member in g.members.values():
            if r.id in member.roles:
                member.roles.remove(r.id)
        self.dispatch_guild(g.id, "GUILD_ROLE_DELETE", {"guild_id": g.id, "role_id": r.id})

    async def update_user(
        self: FakeDiscord,
        user: Any,
        *,
        username: Any = _UNSET,
        global_name: Any = _UNSET,
        avatar: Any = _UNSET,
    ) -> None:
        """USER_UPDATE to the user's own sessions; GUILD_MEMBER_UPDATE in the guilds it is in."""
        u = self.users[cid(user)]
        if username is not _UNSET:
            u.username = username
        if global_name is not _UNSET:
            u.global_name = global_name
        if avatar is not _UNSET:
            u.avatar = self.add_image(avatar)
        self.dispatch_to_user(u.id, "USER_UPDATE", self.user_json(u))
        for g in self.guilds.values():
            if u.id in g.members:
                self._member_update(g.id, u.id)
