"""Matrix messages to Discord.

The runtime picks the login: a Matrix user's personal login sends as that user; anyone else
(the bot login's own user too) is relayed by the guild's bot through the channel's webhook,
under their Matrix name and avatar (the runtime's RelaySender).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import escape_markdown

from bridgekit.contract.capabilities import SendRefused
from bridgekit.contract.events import MatrixMessage, MessageContent, RemoteMessageID
from bridgekit.contract.results import MessageResult

from .html_to_markdown import DiscordText, matrix_to_discord, split_message
from .names import OutboundNames, room_channels
from .threads import thread_name

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.outbound")

#: Discord's "Unknown Webhook": the channel's webhook was deleted.
UNKNOWN_WEBHOOK = 10015


class WebhooksForbidden(Exception):
    """The bot may not make webhooks in a channel: relayed messages go as the bot, labelled."""


class Outbound:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self.names = OutboundNames(connector)

    async def converted(self, content: MessageContent, may_mention_room: bool) -> DiscordText:
        """Matrix content as Discord markdown and who it may ping (``@everyone``/``@here``
        only from a sender with the power to mention the room); links to portal rooms
        become channel mentions."""
        channels = await room_channels(self.connector, content.html)
        names = OutboundNames(self.connector, channels) if channels else self.names
        return self.convert(content, may_mention_room, names)

    def convert(
        self, content: MessageContent, may_mention_room: bool, names: OutboundNames | None = None
    ) -> DiscordText:
        """:meth:`converted` without channel links (synchronous)."""
        text = matrix_to_discord(
            content.body, content.html, names or self.names, may_mention_room=may_mention_room
        )
        if content.msgtype == "m.emote" and text.text:
            text.text = f"_{text.text}_"
        return text

    def text_of(self, client: DiscordClient, msg: MatrixMessage) -> str:
        """The Discord text of a Matrix message (without channel links)."""
        return self.convert(msg.content, msg.may_mention_room).text

    def allowed_mentions(self, msg: Any) -> discord.AllowedMentions:
        """Who a send without its own list may ping (a file's caption, converted without
        pills kept apart): users, and ``@everyone`` only from a sender with the power to
        mention the room."""
        return discord.AllowedMentions(
            everyone=bool(getattr(msg, "may_mention_room", False)), users=True, roles=False
        )

    async def send_message(self, client: DiscordClient, msg: MatrixMessage) -> MessageResult:
        if self.connector.uploads.is_file(msg):
            return await self.connector.uploads.send(client, msg)
        channel_id = int(msg.portal.id)
        root = msg.content.thread_root
        thread_id = await self.connector.threads.target(client, channel_id, root) if root else None
        converted = await self.converted(msg.content, msg.may_mention_room)
        if not converted.text.strip():
            raise SendRefused("an empty message cannot be sent to Discord")
        # A forum's room: a message outside a thread is a new post, titled from its text.
        new_post = thread_id is None and self.connector.threads.is_forum(client, channel_id)
        reply_to = msg.content.reply_to
        webhook = msg.relay_sender is not None and await self.webhooks_allowed(client, channel_id)
        if webhook and reply_to:
            line = await self.connector.replies.quote_line(client, channel_id, reply_to)
            if line:
                converted.text = f"{line}\n{converted.text}"
        mentions = converted.allowed_mentions(replied_user=bool(reply_to))
        sent: list[Any] = []
        parts = split_message(converted.text)
        for n, part in enumerate(parts):
            send: dict[str, Any] = {"content": part, "allowed_mentions": mentions}
            if webhook:
                if new_post and n == 0:
                    send["thread_name"] = thread_name(converted.text)
                try:
                    sent.append(await self.via_webhook(client, channel_id, thread_id, msg, **send))
                except WebhooksForbidden:
                    webhook = False  # the rest as the bot, labelled
                else:
                    if new_post and n == 0:
                        thread_id = sent[0].id  # a post's thread id is its first message's
                    continue
                send.pop("thread_name", None)
            if msg.relay_sender is not None:
                name = escape_markdown(msg.relay_sender.displayname)
                send["content"] = f"**{name}**: {part}"
            if reply_to and n == 0 and not new_post:
                send["reference"] = discord.MessageReference(
                    message_id=int(reply_to),
                    channel_id=thread_id or channel_id,
                    fail_if_not_exists=False,
                )
            sent.append(await self.as_user(client, thread_id or channel_id, msg, **send))
            if new_post and n == 0:
                thread_id = sent[0].id
        if thread_id is not None:
            for message in sent:
                await self.note_thread(message.id, thread_id)
        return MessageResult(
            remote_id=RemoteMessageID(str(sent[0].id)),
            extra_ids=[RemoteMessageID(str(m.id)) for m in sent[1:]],
        )

    async def note_thread(self, message_id: int, thread_id: int) -> None:
        """Remember the thread a message was sent to: editing or deleting it later names
        the thread (a webhook's ``thread_id``, the thread's own channel), which a Matrix
        edit or redaction does not say."""
        await self.connector.bridge.set_kv(f"thread-of:{message_id}", str(thread_id))

    async def thread_of(self, message_id: int) -> int | None:
        kept = await self.connector.bridge.get_kv(f"thread-of:{message_id}")
        return int(kept) if kept and kept.isdigit() else None

    async def webhooks_allowed(self, client: DiscordClient, channel_id: int) -> bool:
        """Whether the channel has (or the bot may make) the bridge's webhook."""
        try:
            await self.connector.webhooks.for_channel(client, channel_id)
        except discord.Forbidden:
            return False
        return True

    async def via_webhook(
        self,
        client: DiscordClient,
        channel_id: int,
        thread_id: int | None,
        msg: Any,
        **send: Any,
    ) -> discord.WebhookMessage:
        """Send through the channel's webhook under the relayed sender's name and avatar; a
        webhook deleted on Discord is made again once."""
        sender = msg.relay_sender
        args: dict[str, Any] = {
            "username": sender.displayname[:80] or "Matrix user",
            "wait": True,
            "allowed_mentions": self.allowed_mentions(msg),
            **send,
        }
        if sender.avatar_url:
            args["avatar_url"] = sender.avatar_url
        if thread_id is not None:
            args["thread"] = discord.Object(thread_id)
        for attempt in (1, 2):
            try:
                hook = await self.connector.webhooks.for_channel(client, channel_id)
            except discord.Forbidden as e:
                raise WebhooksForbidden(channel_id) from e
            try:
                return await hook.send(**args)
            except discord.NotFound as e:
                if e.code != UNKNOWN_WEBHOOK or attempt == 2:
                    raise
                log.info("The webhook of channel %s was deleted: making a new one", channel_id)
                await self.connector.webhooks.forget(channel_id)
        raise AssertionError("unreachable")

    async def as_user(
        self, client: DiscordClient, channel_id: int, msg: MatrixMessage, **send: Any
    ) -> discord.Message:
        """Send as the login's own account (a personal login; a bot where it may not make
        webhooks)."""
        gateway = client.gateway
        assert gateway is not None
        channel = gateway.get_channel(channel_id) or await gateway.fetch_channel(channel_id)
        if isinstance(channel, discord.ForumChannel):
            send.pop("reference", None)
            send.setdefault("allowed_mentions", self.allowed_mentions(msg))
            return await self.connector.threads.new_post(channel, **send)
        assert isinstance(channel, discord.abc.Messageable)
        send.setdefault("allowed_mentions", self.allowed_mentions(msg))
        nonce = self.connector.personal.expect(msg.portal)  # its echo is known by it
        return await channel.send(nonce=nonce, **send)
