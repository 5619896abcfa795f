"""Edits both ways.

Discord -> Matrix: MESSAGE_UPDATE (discord.py's ``raw_message_edit``: the bridge keeps no
message cache) carries the message as it now is. Not every update is an edit: Discord's
unfurler adds embeds to a message without editing it (no new ``edited_timestamp``), and
a change of attachments alone leaves the text as it was. Only a new text is bridged, as a
replacement of the original Matrix event (an edit always edits the original, never an
earlier edit), once even when several bot logins of a guild get it (message id + edited
timestamp). A text emptied while the message keeps attachments (or embeds) is no edit to
bridge: the Matrix message is neither blanked nor deleted (matrix-appservice-discord #791,
#688); the files stay.

Matrix -> Discord: the message is changed where it was sent: a relayed one through the
channel's webhook (or, where webhooks are not allowed, as the bot with the sender's label),
a personal login's through its own account. Matrix edits always name the original event,
so an edit of an edit changes the original Discord message. The update that comes back
over the gateway is recognised by its text (noted before the request) and not bridged again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import escape_markdown

from bridgekit.contract.connector import EditHandler, SendRefused
from bridgekit.contract.events import MatrixEdit, RemoteEdit, RemoteMessageID
from bridgekit.contract.results import MessageResult

from .inbound import portal_channel_id
from .outbound import UNKNOWN_WEBHOOK

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.edits")

#: Message texts remembered (the last bridged or sent), to tell an edit from an update that
#: leaves the text alone (bounded, per process).
KNOWN_TEXTS = 10_000
#: Discord's "Unknown Message".
UNKNOWN_MESSAGE = 10008


def _channel_of_edit(args: tuple[Any, ...]) -> int | None:
    payload: discord.RawMessageUpdateEvent = args[0]
    return portal_channel_id(payload.message.channel)


class Edits:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        #: message id -> its text as last bridged or sent (what an update is compared with).
        self._texts: OrderedDict[int, str] = OrderedDict()
        connector.inbound.register("raw_message_edit", self.on_edit, _channel_of_edit)

    def note_text(self, message_id: int, text: str) -> None:
        self._texts[message_id] = text
        self._texts.move_to_end(message_id)
        if len(self._texts) > KNOWN_TEXTS:
            self._texts.popitem(last=False)

    # -- Discord -> Matrix ----------------------------------------------------------------------

    async def on_edit(self, client: DiscordClient, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        connector = self.connector
        guild = message.guild
        if guild is not None and client.is_bot and not client.bridges_guild(guild.id):
            return
        if message.edited_at is None:
            return  # no edit: embeds unfurled, a thread's counts, a pin
        text = message.content or ""
        if self._texts.get(message.id) == text:
            return  # the text is as it was (attachments changed; our own edit's echo)
        if connector.own_account(message.author.id):
            return
        channel_id = portal_channel_id(message.channel)
        if message.webhook_id is not None and channel_id is not None:
            if await connector.webhooks.is_ours(client, channel_id, message.webhook_id):
                return  # a relayed message edited from Matrix: already there
        if not connector.first_sight(f"e:{message.id}:{message.edited_at.isoformat()}"):
            return  # the same edit through another bot login
        if not text.strip():
            # An emptied text: the files (or embeds) stay; the Matrix message must not be
            # blanked, nor be deleted (its attachments are their own events).
            log.debug("Edit of %s to an empty text not bridged", message.id)
            return
        self.note_text(message.id, text)
        content = await connector.render.content(client, message)
        await connector.bridge.queue_remote_event(
            client.login.id,
            RemoteEdit(
                portal=connector.portal_of(client, message.channel),
                sender=connector.sender_of(client, message.author),
                timestamp=message.edited_at.timestamp(),
                target_id=RemoteMessageID(str(message.id)),
                content=content,
            ),
        )

    # -- Matrix -> Discord ----------------------------------------------------------------------

    async def matrix_edit(self, client: DiscordClient, edit: MatrixEdit) -> MessageResult | None:
        if edit.target_part not in ("", None):
            raise SendRefused(
                "only the text of a message can be edited on Discord", "m.unsupported"
            )
        if not edit.target_id.isdigit():
            raise SendRefused("the edited message is not on Discord", "m.unsupported")
        outbound = self.connector.outbound
        converted = await outbound.converted(edit.content, edit.may_mention_room)
        text = converted.text
        if not text.strip():
            raise SendRefused("a message cannot be edited to nothing on Discord", "m.unsupported")
        if len(text) > 2000:
            raise SendRefused("the edited text is longer than Discord's 2000 characters")
        message_id = int(edit.target_id)
        channel_id = int(edit.portal.id)
        mentions = converted.allowed_mentions()
        before = self._texts.get(message_id)
        thread_id = await outbound.thread_of(message_id)
        if edit.relay_sender is not None:
            try:
                hook = await self.connector.webhooks.for_channel(client, channel_id)
            except discord.Forbidden:
                hook = None  # the message went as the bot, labelled
            if hook is not None:
                self.note_text(message_id, text)
                try:
                    await hook.edit_message(
                        message_id,
                        content=text,
                        allowed_mentions=mentions,
                        thread=discord.Object(thread_id) if thread_id else discord.utils.MISSING,
                    )
                    return None
                except discord.NotFound as e:
                    self._forget(message_id, before)
                    if e.code == UNKNOWN_WEBHOOK:
                        await self.connector.webhooks.forget(channel_id)
                        raise SendRefused("the message's webhook was deleted on Discord") from e
                    # not the webhook's: sent as the bot with a label before webhooks were
                    # allowed
                except BaseException:
                    self._forget(message_id, before)
                    raise
            text = f"**{escape_markdown(edit.relay_sender.displayname)}**: {text}"
        await self._edit_own(client, thread_id or channel_id, message_id, text, mentions, before)
        return None

    async def _edit_own(
        self,
        client: DiscordClient,
        channel_id: int,
        message_id: int,
        text: str,
        mentions: discord.AllowedMentions,
        before: str | None,
    ) -> None:
        """Edit a message the login's own account sent."""
        gateway = client.gateway
        if gateway is None:
            raise SendRefused("the Discord login is not connected", retriable=True)
        channel: Any = gateway.get_channel(channel_id) or await gateway.fetch_channel(channel_id)
        self.note_text(message_id, text)
        try:
            await channel.get_partial_message(message_id).edit(
                content=text, allowed_mentions=mentions
            )
        except discord.Forbidden as e:
            self._forget(message_id, before)
            raise SendRefused(
                "Discord does not let you edit that message", "m.no_permission"
            ) from e
        except BaseException:
            self._forget(message_id, before)
            raise

    def _forget(self, message_id: int, before: str | None) -> None:
        if before is None:
            self._texts.pop(message_id, None)
        else:
            self._texts[message_id] = before


class DiscordEdits(EditHandler):
    """:class:`~.client.DiscordClient`'s Matrix edits (see :class:`Edits`)."""

    connector: DiscordConnector

    async def handle_matrix_edit(self, edit: MatrixEdit) -> MessageResult | None:
        return await self.connector.edits.matrix_edit(self, edit)  # type: ignore[arg-type]
