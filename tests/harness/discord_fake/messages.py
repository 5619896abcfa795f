"""The REST v10 message routes: history paging as Discord does it (newest first, ``after``
giving the messages right after the anchor), sending (content limits, replies,
``allowed_mentions``, multipart files), edits, deletes, reactions, typing and threads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import (
    GUILD_FORUM,
    MANAGE_MESSAGES,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    Attachment,
    Channel,
    Message,
)
from .rest import _err, _too_long

if TYPE_CHECKING:
    from .server import Call, FakeDiscord


class MessageRoutes:
    """Route handlers (``self`` is the ``FakeDiscord``)."""

    def _add_message_routes(self: FakeDiscord) -> None:
        r = self.route
        r("GET", "/channels/{channel_id}/messages", self._get_messages)
        r("POST", "/channels/{channel_id}/messages", self._post_message)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r("PATCH", "/channels/{channel_id}/messages/{message_id}", self._patch_message)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message)
        r(
            "PUT",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            self._put_reaction,
        )
        r(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            self._delete_own_reaction,
        )
        r(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user_id}",
            self._delete_reaction,
        )
        r(
            "GET",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}",
            self._get_reactions,
        )
        r("POST", "/channels/{channel_id}/typing", self._post_typing)
        r("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._thread_from_message)
        r("POST", "/channels/{channel_id}/threads", self._thread_without_message)
        r("GET", "/channels/{channel_id}/threads/archived/public", self._get_archived_threads)

    async def _get_messages(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(call.query.get("limit", "50"))))
        msgs = self.message_store.get(channel.id, [])  # oldest first
        q = call.query
        if "around" in q:
            around = int(q["around"])
            older = [m for m in msgs if int(m.id) < around][-(limit // 2) :] if limit // 2 else []
            newer = [m for m in msgs if int(m.id) >= around][: limit - len(older)]
            chosen = older + newer
        elif "after" in q:
            chosen = [m for m in msgs if int(m.id) > int(q["after"])][:limit]
        elif "before" in q:
            chosen = [m for m in msgs if int(m.id) < int(q["before"])][-limit:]
        else:
            chosen = msgs[-limit:]
        return [self.message_json(m) for m in reversed(chosen)]

    async def _get_message(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        return self.message_json(self._msg(channel, call.params["message_id"]))

    def _check_send(self: FakeDiscord, call: Call, channel: Channel) -> None:
        perms = self.permissions(call.me, channel)
        need = SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES
        if not perms & need:
            raise _err(403, 50013, "Missing Permissions")
        if channel.type == GUILD_FORUM:
            raise _err(400, 50008, "Cannot send messages in a non-text channel")

    def _files_with_descriptions(
        self: FakeDiscord, call: Call
    ) -> tuple[list[Any], list[str | None]]:
        body = call.body or {}
        meta = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        descriptions = [meta.get(str(n), {}).get("description") for n in range(len(call.files))]
        return call.files, descriptions

    async def _post_message(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        self._check_send(call, channel)
        body = call.body or {}
        content = body.get("content") or ""
        if len(content) > 2000:
            raise _too_long("content", 2000)
        files, descriptions = self._files_with_descriptions(call)
        stickers = body.get("sticker_ids") or []
        if not content and not files and not body.get("embeds") and not stickers:
            raise _err(400, 50006, "Cannot send an empty message")
        reply_to = None
        ref = body.get("message_reference")
        if ref:
            reply_to = str(ref.get("message_id"))
            if self.find_message(reply_to) is None and ref.get("fail_if_not_exists", True):
                raise _err(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "message_reference": {
                            "_errors": [
                                {"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}
                            ]
                        }
                    },
                )
        msg = self.new_message(
            channel,
            call.me.id,
            content,
            files=files,
            descriptions=descriptions,
            embeds=body.get("embeds"),
            sticker={"id": str(stickers[0]), "name": "sticker", "format_type": 1}
            if stickers
            else None,
            reply_to=reply_to,
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
        )
        await self.publish_create(msg)
        return self.message_json(msg)

    def _edited_attachments(self: FakeDiscord, msg: Message, call: Call) -> list[Attachment] | None:
        """An edit's attachments: the kept ones (listed by id in ``attachments``) and new files;
        None when the edit leaves them alone."""
        body = call.body or {}
        if "attachments" not in body and not call.files:
            return None
        keep = {str(a.get("id")) for a in body.get("attachments") or [] if isinstance(a, dict)}
        attachments = [a for a in msg.attachments if a.id in keep]
        files, descriptions = self._files_with_descriptions(call)
        for n, (filename, data, ctype) in enumerate(files):
            attachments.append(
                Attachment(
                    id=self.ids.next(),
                    channel_id=msg.channel_id,
                    filename=filename,
                    data=data,
                    content_type=ctype,
                    description=descriptions[n],
                )
            )
        return attachments

    async def _patch_message(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        msg = self._msg(channel, call.params["message_id"])
        if msg.author_id != call.me.id or msg.webhook_id is not None:
            raise _err(403, 50005, "Cannot edit a message authored by another user")
        body = call.body or {}
        if len(body.get("content") or "") > 2000:
            raise _too_long("content", 2000)
        attachments = self._edited_attachments(msg, call)
        self.apply_edit(
            msg, body.get("content") if "content" in body else None, body.get("embeds"), attachments
        )
        return self.message_json(msg)

    async def _delete_message(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        msg = self._msg(channel, call.params["message_id"])
        if msg.author_id != call.me.id and not self.permissions(call.me, channel) & MANAGE_MESSAGES:
            raise _err(403, 50013, "Missing Permissions")
        self.remove_message(msg)
        return None

    # --- reactions, typing -------------------------------------------------------------------

    def _emoji_ok(self: FakeDiscord, emoji: str) -> None:
        if not emoji or emoji.isascii() and ":" not in emoji:
            raise _err(400, 10014, "Unknown Emoji")

    async def _put_reaction(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        msg = self._msg(channel, call.params["message_id"])
        self._emoji_ok(call.params["emoji"])
        self.react(msg, call.me.id, call.params["emoji"], True)
        return None

    async def _delete_own_reaction(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        msg = self._msg(channel, call.params["message_id"])
        self.react(msg, call.me.id, call.params["emoji"], False)
        return None

    async def _delete_reaction(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call, VIEW_CHANNEL | MANAGE_MESSAGES)
        msg = self._msg(channel, call.params["message_id"])
        self.react(msg, call.params["user_id"], call.params["emoji"], False)
        return None

    async def _get_reactions(self: FakeDiscord, call: Call) -> Any:
        from .actions import emoji_json, emoji_key

        channel = self._chan(call)
        msg = self._msg(channel, call.params["message_id"])
        users = msg.reactions.get(emoji_key(emoji_json(call.params["emoji"])), [])
        return [self.user_json(self.users[u]) for u in users]

    async def _post_typing(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        self._check_send(call, channel)
        self.start_typing(channel, call.me.id)
        return None

    # --- threads -----------------------------------------------------------------------------

    async def _thread_from_message(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        msg = self._msg(channel, call.params["message_id"])
        if msg.thread_id is not None:
            raise _err(400, 160004, "A thread has already been created for this message")
        name = str((call.body or {}).get("name") or "")
        if not name or len(name) > 100:
            raise _too_long("name", 100)
        return self.channel_json(self.open_thread(channel, name, call.me.id, starter=msg))

    async def _thread_without_message(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        body = call.body or {}
        name = str(body.get("name") or "")
        if not name or len(name) > 100:
            raise _too_long("name", 100)
        if channel.type == GUILD_FORUM:
            first = body.get("message") or {}
            if not first.get("content") and not call.files and not first.get("embeds"):
                raise _err(400, 50006, "Cannot send an empty message")
            thread_id = self.ids.next()
            thread = self.open_thread(channel, name, call.me.id, thread_id=thread_id)
            files, descriptions = self._files_with_descriptions(call)
            msg = self.new_message(
                thread,
                call.me.id,
                first.get("content") or "",
                files=files,
                descriptions=descriptions,
                embeds=first.get("embeds"),
                msg_id=thread_id,
            )
            await self.publish_create(msg)
            return self.channel_json(thread) | {"message": self.message_json(msg)}
        kind = int(body.get("type") or PRIVATE_THREAD)
        if kind not in (PUBLIC_THREAD, PRIVATE_THREAD, 10):
            raise _err(400, 50035, "Invalid Form Body")
        return self.channel_json(self.open_thread(channel, name, call.me.id, type=kind))

    async def _get_archived_threads(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        threads = [
            c
            for c in self.channels.values()
            if c.parent_id == channel.id and c.is_thread and c.archived
        ]
        return {
            "threads": [self.channel_json(t) for t in threads],
            "members": [],
            "has_more": False,
        }
