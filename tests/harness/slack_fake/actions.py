"""What tests do as Slack users: each method stores the change and emits the event Slack
would send."""

from __future__ import annotations

import time
from typing import Any

from .models import (
    FileObj,
    Message,
)
from .wire import _uuid


class UserActions:
    """Posting, editing, deleting, reacting, profile changes, joins, leaves,
    renames, topics and purposes, as Slack users."""

    # --- what tests do as Slack users ------------------------------------------------------

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        files: list[FileObj] | None = None,
    ) -> Message:
        """``user`` posts in ``channel`` (in the thread of ``thread_ts``; also to the channel
        with ``reply_broadcast``; with ``files`` as one ``file_share`` message). Stored, and
        the ``message`` event goes out."""
        conv = self.conversations[channel]
        if user not in conv.members:
            raise ValueError(f"{user} is not a member of {channel}")
        msg = Message(channel, self.new_ts(), text, user=user)
        msg.extra["client_msg_id"] = _uuid()
        if thread_ts is not None:
            parent = self._maybe_message(channel, thread_ts)
            if parent is None:
                raise ValueError(f"no message {thread_ts} in {channel}")
            root = parent.thread_ts or parent.ts
            parent.thread_ts = root
            msg.thread_ts = root
            if reply_broadcast:
                msg.reply_broadcast = True
                msg.subtype = "thread_broadcast"
        if files:
            msg.files = [f.id for f in files]
            msg.subtype = msg.subtype or "file_share"
        self._store(msg)
        self._emit_message(msg)
        return msg

    def post_me_message(self, channel: str, user: str, text: str) -> Message:
        """``user`` types ``/me text``: a ``me_message``."""
        conv = self.conversations[channel]
        if user not in conv.members:
            raise ValueError(f"{user} is not a member of {channel}")
        msg = Message(channel, self.new_ts(), text, user=user, subtype="me_message")
        self._store(msg)
        self._emit_message(msg)
        return msg

    def edit_message(self, channel: str, ts: str, text: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._edit(msg, text, msg.user or "")

    def unfurl(self, channel: str, ts: str, url: str, title: str) -> dict[str, Any] | None:
        """Slack unfurls a link of a message: the attachment is added and ``message_changed``
        goes out with the text unchanged (and no ``edited``)."""
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._change(
            msg,
            lambda _ts: msg.extra.setdefault("attachments", []).append(
                {
                    "id": len(msg.extra.get("attachments", [])) + 1,
                    "from_url": url,
                    "original_url": url,
                    "title": title,
                    "title_link": url,
                    "fallback": title,
                    "service_name": url.split("/")[2] if "//" in url else url,
                }
            ),
        )

    def delete_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._delete(msg)

    def add_reaction(self, channel: str, ts: str, user: str, name: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._react(msg, user, name, True)

    def remove_reaction(self, channel: str, ts: str, user: str, name: str) -> dict[str, Any] | None:
        msg = self._maybe_message(channel, ts)
        if msg is None:
            raise ValueError(f"no message {ts} in {channel}")
        return self._react(msg, user, name, False)

    def update_user(
        self,
        user_id: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        avatar: bytes | None = None,
    ) -> dict[str, Any]:
        """Change a profile (a new avatar gets new image URLs) and emit ``user_change``."""
        user = self.users[user_id]
        if real_name is not None:
            user.real_name = real_name
        if display_name is not None:
            user.display_name = display_name
        if avatar is not None:
            self._set_avatar(user, avatar)
        user.updated = int(time.time())
        event = {
            "type": "user_change",
            "user": self.user_json(user),
            "cache_ts": user.updated,
            "event_ts": self.new_ts(),
        }
        return self.emit_event(user.team_id, event)

    def join(self, channel: str, user: str, inviter: str | None = None) -> dict[str, Any] | None:
        """``user`` joins: ``member_joined_channel`` and the ``channel_join`` message."""
        conv = self.conversations[channel]
        if user in conv.members:
            return None
        conv.members.append(user)
        event: dict[str, Any] = {
            "type": "member_joined_channel",
            "user": user,
            "channel": channel,
            "channel_type": "C" if conv.kind == "public" else "G",
            "team": conv.team_id,
            "event_ts": self.new_ts(),
        }
        if inviter:
            event["inviter"] = inviter
        payload = self.emit_event(conv.team_id, event) if self._sees(conv) else None
        msg = Message(channel, self.new_ts(), f"<@{user}> has joined the channel", user=user)
        msg.subtype = "channel_join"
        self._store(msg)
        self._emit_message(msg)
        return payload

    def leave(self, channel: str, user: str) -> dict[str, Any] | None:
        """``user`` leaves: ``member_left_channel`` (nothing if the bot no longer sees it)."""
        conv = self.conversations[channel]
        if user not in conv.members:
            return None
        seen = self._sees(conv)
        conv.members.remove(user)
        event = {
            "type": "member_left_channel",
            "user": user,
            "channel": channel,
            "channel_type": "C" if conv.kind == "public" else "G",
            "team": conv.team_id,
            "event_ts": self.new_ts(),
        }
        return self.emit_event(conv.team_id, event) if seen else None

    def rename(self, channel: str, name: str, user: str | None = None) -> dict[str, Any] | None:
        """``channel_rename`` (``group_rename`` for a private channel); renamed by ``user``,
        also the ``channel_name`` message Slack posts in the channel."""
        conv = self.conversations[channel]
        old_name, conv.name = conv.name, name
        if user is not None:
            text = f'has renamed the channel from "{old_name}" to "{name}"'
            msg = Message(channel, self.new_ts(), text, user=user)
            msg.subtype = "channel_name"
            msg.extra.update(old_name=old_name, name=name)
            self._store(msg)
            self._emit_message(msg)
        if not self._sees(conv):
            return None
        event = {
            "type": "channel_rename" if conv.kind == "public" else "group_rename",
            "channel": {
                "id": conv.id,
                "name": name,
                "name_normalized": name,
                "created": conv.created,
                "is_channel": conv.kind == "public",
                "is_mpim": conv.kind == "mpim",
            },
            "event_ts": self.new_ts(),
        }
        return self.emit_event(conv.team_id, event)

    def rename_team(self, team_id: str, name: str) -> dict[str, Any]:
        """The workspace gets a new name: ``team_rename`` (to the app, wherever it is)."""
        self.teams[team_id].name = name
        return self.emit_event(team_id, {"type": "team_rename", "name": name})

    def set_topic(self, channel: str, user: str, topic: str) -> Message:
        """The ``channel_topic`` message Slack posts when ``user`` sets the topic."""
        conv = self.conversations[channel]
        conv.topic = topic
        msg = Message(channel, self.new_ts(), f"set the channel topic: {topic}", user=user)
        msg.subtype = "channel_topic"
        msg.extra["topic"] = topic
        self._store(msg)
        self._emit_message(msg)
        return msg

    def set_purpose(self, channel: str, user: str, purpose: str) -> Message:
        conv = self.conversations[channel]
        conv.purpose = purpose
        msg = Message(channel, self.new_ts(), f"set the channel description: {purpose}", user=user)
        msg.subtype = "channel_purpose"
        msg.extra["purpose"] = purpose
        self._store(msg)
        self._emit_message(msg)
        return msg
