"""Webhooks: created and listed per channel (MANAGE_WEBHOOKS needed, as on Discord), executed
with their token (``?wait=true`` returns the message, ``thread_id`` posts in a thread, the
given ``username`` / ``avatar_url`` on the message), their messages edited and deleted, and
deleted webhooks answering 404 "Unknown Webhook" (10015). WEBHOOKS_UPDATE on changes."""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from .models import GUILD_FORUM, MANAGE_WEBHOOKS, VIEW_CHANNEL, ApiError, Channel, Message, Webhook

if TYPE_CHECKING:
    from .server import Call, FakeDiscord


def _err(status: int, code: int, message: str, errors: Any = None) -> Exception:
    return ApiError(status, code, message, errors)


class WebhookRoutes:
    """Webhook routes (``self`` is the ``FakeDiscord``)."""

    def _add_webhook_routes(self: FakeDiscord) -> None:
        r = self.route
        r("GET", "/channels/{channel_id}/webhooks", self._list_channel_webhooks)
        r("POST", "/channels/{channel_id}/webhooks", self._create_webhook)
        r("GET", "/guilds/{guild_id}/webhooks", self._list_guild_webhooks)
        r("GET", "/webhooks/{webhook_id}", self._get_webhook)
        r("DELETE", "/webhooks/{webhook_id}", self._delete_webhook_route)
        r("GET", "/webhooks/{webhook_id}/{token}", self._get_webhook_with_token, auth=False)
        r("DELETE", "/webhooks/{webhook_id}/{token}", self._delete_webhook_with_token, auth=False)
        r("POST", "/webhooks/{webhook_id}/{token}", self._execute_webhook, auth=False)
        r(
            "GET",
            "/webhooks/{webhook_id}/{token}/messages/{message_id}",
            self._get_webhook_message,
            auth=False,
        )
        r(
            "PATCH",
            "/webhooks/{webhook_id}/{token}/messages/{message_id}",
            self._edit_webhook_message,
            auth=False,
        )
        r(
            "DELETE",
            "/webhooks/{webhook_id}/{token}/messages/{message_id}",
            self._delete_webhook_message,
            auth=False,
        )

    def add_webhook(self: FakeDiscord, channel: Any, creator: Any, name: str = "hook") -> Webhook:
        """A webhook made by ``creator`` (set-up helper; no permission check)."""
        ch = self.channels[str(getattr(channel, "id", channel))]
        creator_user = self.users[str(getattr(creator, "id", creator))]
        hook = Webhook(
            id=self.ids.next(),
            token=secrets.token_urlsafe(48),
            channel_id=ch.id,
            guild_id=ch.guild_id or "",
            name=name,
            creator_id=creator_user.id,
            application_id=creator_user.application_id,
        )
        self.webhooks[hook.id] = hook
        self.dispatch_guild(
            ch.guild_id or "", "WEBHOOKS_UPDATE", {"guild_id": ch.guild_id, "channel_id": ch.id}
        )
        return hook

    def delete_webhook(self: FakeDiscord, webhook_id: Any) -> None:
        """The webhook is gone: executing it answers 404 Unknown Webhook (10015)."""
        hook = self.webhooks[str(getattr(webhook_id, "id", webhook_id))]
        hook.deleted = True
        self.dispatch_guild(
            hook.guild_id,
            "WEBHOOKS_UPDATE",
            {"guild_id": hook.guild_id, "channel_id": hook.channel_id},
        )

    def _hook_channel(self: FakeDiscord, call: Call) -> Channel:
        channel = self.channels.get(call.params["channel_id"])
        if channel is None:
            raise _err(404, 10003, "Unknown Channel")
        perms = self.permissions(call.me, channel)
        if not perms & VIEW_CHANNEL:
            raise _err(403, 50001, "Missing Access")
        if not perms & MANAGE_WEBHOOKS:
            raise _err(403, 50013, "Missing Permissions")
        if channel.is_thread or channel.is_dm:
            raise _err(400, 50024, "Cannot execute action on this channel type")
        return channel

    def _hook(self: FakeDiscord, call: Call, *, token: bool) -> Webhook:
        hook = self.webhooks.get(call.params["webhook_id"])
        if hook is None or hook.deleted:
            raise _err(404, 10015, "Unknown Webhook")
        if token and not secrets.compare_digest(hook.token, call.params["token"]):
            raise _err(401, 50027, "Invalid Webhook Token")
        return hook

    async def _list_channel_webhooks(self: FakeDiscord, call: Call) -> Any:
        channel = self._hook_channel(call)
        return [
            self.webhook_json(h)
            for h in self.webhooks.values()
            if h.channel_id == channel.id and not h.deleted
        ]

    async def _list_guild_webhooks(self: FakeDiscord, call: Call) -> Any:
        guild = self.guilds.get(call.params["guild_id"])
        if guild is None:
            raise _err(404, 10004, "Unknown Guild")
        return [
            self.webhook_json(h)
            for h in self.webhooks.values()
            if h.guild_id == guild.id
            and not h.deleted
            and self.permissions(call.me, h.channel_id) & MANAGE_WEBHOOKS
        ]

    async def _create_webhook(self: FakeDiscord, call: Call) -> Any:
        channel = self._hook_channel(call)
        name = str((call.body or {}).get("name") or "")
        if not 1 <= len(name) <= 80 or "clyde" in name.lower() or "discord" in name.lower():
            raise _err(
                400,
                50035,
                "Invalid Form Body",
                {
                    "name": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_BAD_LENGTH",
                                "message": "Must be between 1 and 80 in length.",
                            }
                        ]
                    }
                },
            )
        if (
            sum(1 for h in self.webhooks.values() if h.channel_id == channel.id and not h.deleted)
            >= 15
        ):
            raise _err(400, 30007, "Maximum number of webhooks reached (15)")
        hook = self.add_webhook(channel, call.me, name)
        return self.webhook_json(hook)

    async def _get_webhook(self: FakeDiscord, call: Call) -> Any:
        hook = self._hook(call, token=False)
        if not self.permissions(call.me, hook.channel_id) & MANAGE_WEBHOOKS:
            raise _err(403, 50013, "Missing Permissions")
        return self.webhook_json(hook)

    async def _get_webhook_with_token(self: FakeDiscord, call: Call) -> Any:
        return self.webhook_json(self._hook(call, token=True), with_token=False)

    async def _delete_webhook_route(self: FakeDiscord, call: Call) -> Any:
        hook = self._hook(call, token=False)
        if not self.permissions(call.me, hook.channel_id) & MANAGE_WEBHOOKS:
            raise _err(403, 50013, "Missing Permissions")
        self.delete_webhook(hook.id)
        return None

    async def _delete_webhook_with_token(self: FakeDiscord, call: Call) -> Any:
        self.delete_webhook(self._hook(call, token=True).id)
        return None

    def _hook_target(self: FakeDiscord, hook: Webhook, call: Call) -> Channel:
        thread_id = call.query.get("thread_id")
        if thread_id is None:
            return self.channels[hook.channel_id]
        thread = self.channels.get(thread_id)
        if thread is None or not thread.is_thread or thread.parent_id != hook.channel_id:
            raise _err(400, 10003, "Unknown Channel")
        return thread

    async def _execute_webhook(self: FakeDiscord, call: Call) -> Any:
        hook = self._hook(call, token=True)
        body = call.body or {}
        content = body.get("content") or ""
        if len(content) > 2000:
            raise _err(
                400,
                50035,
                "Invalid Form Body",
                {
                    "content": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_MAX_LENGTH",
                                "message": "Must be 2000 or fewer in length.",
                            }
                        ]
                    }
                },
            )
        username = body.get("username")
        if username is not None and (not 1 <= len(username) <= 80 or "clyde" in username.lower()):
            raise _err(
                400,
                50035,
                "Invalid Form Body",
                {
                    "username": {
                        "_errors": [
                            {
                                "code": "USERNAME_INVALID",
                                "message": 'Username cannot contain "clyde" or be over 80',
                            }
                        ]
                    }
                },
            )
        target = self._hook_target(hook, call)
        files, descriptions = self._files_with_descriptions(call)
        if not content and not files and not body.get("embeds"):
            raise _err(400, 50006, "Cannot send an empty message")
        parent = self.channels[hook.channel_id]
        if parent.type == GUILD_FORUM and target is parent:
            name = body.get("thread_name")
            if not name:
                raise _err(
                    400,
                    220001,
                    "Webhooks posted to forum channels must have a thread_name or thread_id",
                )
            tid = self.ids.next()
            target = self.open_thread(parent, name, hook.creator_id, thread_id=tid)
            msg = self._hook_message(hook, target, body, content, files, descriptions, msg_id=tid)
        else:
            msg = self._hook_message(hook, target, body, content, files, descriptions)
        await self.publish_create(msg)
        return self.message_json(msg) if call.query.get("wait") in ("true", "1", "True") else None

    def _hook_message(
        self: FakeDiscord,
        hook: Webhook,
        target: Channel,
        body: dict[str, Any],
        content: str,
        files: list[Any],
        descriptions: list[Any],
        msg_id: str | None = None,
    ) -> Message:
        avatar_url = body.get("avatar_url")
        msg = self.new_message(
            target,
            hook.creator_id,
            content,
            files=files,
            descriptions=descriptions,
            embeds=body.get("embeds"),
            allowed_mentions=body.get("allowed_mentions"),
            webhook=hook,
            webhook_name=body.get("username"),
            webhook_avatar_url=avatar_url,
            msg_id=msg_id,
        )
        if avatar_url:
            msg.webhook_avatar = hashlib.sha1(avatar_url.encode()).hexdigest()[:32]
        return msg

    def _hook_msg(self: FakeDiscord, hook: Webhook, call: Call) -> Message:
        channel = self._hook_target(hook, call)
        for msg in self.message_store.get(channel.id, []):
            if msg.id == call.params["message_id"] and msg.webhook_id == hook.id:
                return msg
        raise _err(404, 10008, "Unknown Message")

    async def _get_webhook_message(self: FakeDiscord, call: Call) -> Any:
        hook = self._hook(call, token=True)
        return self.message_json(self._hook_msg(hook, call))

    async def _edit_webhook_message(self: FakeDiscord, call: Call) -> Any:
        hook = self._hook(call, token=True)
        msg = self._hook_msg(hook, call)
        body = call.body or {}
        attachments = self._edited_attachments(msg, call)
        self.apply_edit(
            msg, body.get("content") if "content" in body else None, body.get("embeds"), attachments
        )
        return self.message_json(msg)

    async def _delete_webhook_message(self: FakeDiscord, call: Call) -> Any:
        hook = self._hook(call, token=True)
        self.remove_message(self._hook_msg(hook, call))
        return None
