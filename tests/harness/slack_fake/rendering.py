"""Users, conversations, files and messages as the Web API and events show them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .models import (
    Conversation,
    FileObj,
    Message,
    User,
)


class ApiObjects:
    """The JSON shapes of stored objects (and the message lookups they need)."""

    # -- objects as the API shows them

    def user_json(self, user: User) -> dict[str, Any]:
        base = f"{self.url}/avatars/{user.id}/{user.avatar_hash}"
        first, _, last = user.real_name.partition(" ")
        # The fields users.info answers for a person (Slack's docs), so that what a client
        # keeps of a user weighs what it would against Slack.
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": user.avatar_hash,
            "first_name": first,
            "last_name": last,
            "team": user.team_id,
            "is_custom_image": bool(user.avatar),
            **{f"image_{s}": f"{base}_{s}.png" for s in (24, 32, 48, 72, 192, 512, 1024)},
        }
        if user.avatar:
            profile["image_original"] = f"{base}_original.png"
        if user.is_bot:
            profile["bot_id"] = user.bot_id
        if user.email:  # users:read.email
            profile["email"] = user.email
        return {
            "id": user.id,
            "team_id": user.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "color": "9f69e7",
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "updated": user.updated,
            "is_email_confirmed": not user.is_bot,
            "who_can_share_contact_card": "EVERYONE",
        }

    def conversation_json(self, conv: Conversation, viewer: str = "") -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": conv.id,
            "created": conv.created,
            "is_archived": conv.is_archived,
            "is_im": conv.kind == "im",
            "is_mpim": conv.kind == "mpim",
            "is_private": conv.kind != "public",
            "context_team_id": conv.team_id,
        }
        if conv.kind == "im":
            other = [m for m in conv.members if m != viewer] or conv.members
            d.update(user=other[0], is_user_deleted=False, is_open=True)
            return d
        d.update(
            name=conv.name,
            name_normalized=conv.name,
            is_channel=conv.kind == "public",
            is_group=conv.kind == "private",
            is_general=False,
            creator=conv.creator,
            is_member=viewer in conv.members,
            topic={"value": conv.topic, "creator": conv.creator, "last_set": 0},
            purpose={"value": conv.purpose, "creator": conv.creator, "last_set": 0},
            num_members=len(conv.members),
        )
        return d

    def file_json(self, f: FileObj) -> dict[str, Any]:
        base = f"{self.url}/files-pri/{f.team_id}-{f.id}"
        name = quote(f.name, safe="")  # Slack's links carry the name escaped
        return {
            "id": f.id,
            "created": f.created,
            "timestamp": f.created,
            "name": f.name,
            "title": f.title,
            "mimetype": f.mimetype,
            "filetype": f.name.rpartition(".")[2] if "." in f.name else "binary",
            "user": f.user,
            "user_team": f.team_id,
            "size": f.length,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            "permalink": f"{self.url}/files/{f.user}/{f.id}/{name}",
            # Slack measures images it can decode: original_w / original_h
            **_image_size(f.data),
            **f.extra,
        }

    def message_json(self, msg: Message, *, with_channel: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "message", "ts": msg.ts, "text": msg.text}
        if msg.subtype:
            d["subtype"] = msg.subtype
        if msg.user and msg.subtype != "bot_message":
            # a bot_message (a bot post under a custom username) has no user, only bot_id
            d["user"] = msg.user
        conv = self.conversations.get(msg.channel)
        if conv is not None:
            d["team"] = conv.team_id
        if msg.bot_id:
            d["bot_id"] = msg.bot_id
            d["app_id"] = self.app_id
            bot_user = self.users.get(msg.user or "")
            if bot_user is not None:
                d["bot_profile"] = {
                    "id": msg.bot_id,
                    "app_id": self.app_id,
                    "name": bot_user.real_name,
                    "deleted": False,
                    "team_id": bot_user.team_id,
                    "user_id": bot_user.id,
                }
        if msg.username:
            d["username"] = msg.username
        if msg.icon_url:
            d["icons"] = {"image_48": msg.icon_url}
        if msg.thread_ts:
            d["thread_ts"] = msg.thread_ts
            if msg.thread_ts != msg.ts:
                parent = self._maybe_message(msg.channel, msg.thread_ts)
                if parent is not None and parent.user:
                    d["parent_user_id"] = parent.user
        replies = self._replies(msg.channel, msg.ts) if msg.thread_ts == msg.ts else []
        if replies:
            d["reply_count"] = len(replies)
            d["reply_users"] = sorted({r.user for r in replies if r.user})
            d["reply_users_count"] = len(d["reply_users"])
            d["latest_reply"] = replies[-1].ts
        if msg.edited:
            d["edited"] = dict(msg.edited)
        if msg.reactions:
            d["reactions"] = [
                {"name": n, "users": list(u), "count": len(u)} for n, u in msg.reactions.items()
            ]
        if msg.files:
            d["files"] = [self.file_json(self.files[f]) for f in msg.files]
            d["upload"] = True
        d.update(msg.extra)
        if with_channel:
            d["channel"] = msg.channel
        return d

    def _maybe_message(self, channel: str, ts: str) -> Message | None:
        for msg in self.messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _replies(self, channel: str, thread_ts: str) -> list[Message]:
        return [
            m
            for m in self.messages.get(channel, [])
            if m.thread_ts == thread_ts and m.ts != thread_ts
        ]


def _image_size(data: bytes | None) -> dict[str, int]:
    """``original_w`` / ``original_h`` of a PNG, as Slack gives them for images."""
    if data and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return {
            "original_w": int.from_bytes(data[16:20], "big"),
            "original_h": int.from_bytes(data[20:24], "big"),
        }
    return {}
