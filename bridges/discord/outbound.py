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
from bridgekit.contract.events import MatrixMessage, RemoteMessageID
from bridgekit.contract.results import MessageResult

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

    def text_of(self, client: DiscordClient, msg: MatrixMessage) -> str:
        """The Discord text of a Matrix message."""
        text = msg.content.body
        if msg.content.msgtype == "m.emote":
            text = f"_{text}_"
        return text

    def allowed_mentions(self, msg: Any) -> discord.AllowedMentions:
        """``@everyone``/``@here`` only from a sender with the power to mention the room."""
        return discord.AllowedMentions(
            everyone=bool(getattr(msg, "may_mention_room", False)), users=True, roles=False
        )

    async def send_message(self, client: DiscordClient, msg: MatrixMessage) -> MessageResult:
        if self.connector.uploads.is_file(msg):
            return await self.connector.uploads.send(client, msg)
        channel_id = int(msg.portal.id)
        root = msg.content.thread_root
        thread_id = await self.connector.threads.target(client, channel_id, root) if root else None
        text = self.text_of(client, msg)
        if not text.strip():
            raise SendRefused("an empty message cannot be sent to Discord")
        post: dict[str, Any] = {}  # a forum's room: a message outside a thread is a new post
        if thread_id is None and self.connector.threads.is_forum(client, channel_id):
            post["thread_name"] = thread_name(text)
        if msg.relay_sender is not None:
            try:
                sent = await self.via_webhook(
                    client, channel_id, thread_id, msg, content=text, **post
                )
            except WebhooksForbidden:
                labelled = f"**{escape_markdown(msg.relay_sender.displayname)}**: {text}"
                sent = await self.as_user(client, thread_id or channel_id, msg, content=labelled)
        else:
            sent = await self.as_user(client, thread_id or channel_id, msg, content=text)
        return MessageResult(remote_id=RemoteMessageID(str(sent.id)))

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
            return await self.connector.threads.new_post(
                channel, allowed_mentions=self.allowed_mentions(msg), **send
            )
        assert isinstance(channel, discord.abc.Messageable)
        nonce = self.connector.personal.expect(msg.portal)  # its echo is known by it
        return await channel.send(allowed_mentions=self.allowed_mentions(msg), nonce=nonce, **send)
