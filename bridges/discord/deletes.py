"""Deletes both ways.

Discord -> Matrix: MESSAGE_DELETE and MESSAGE_DELETE_BULK (discord.py's
``raw_message_delete`` / ``raw_bulk_message_delete``: no message cache) redact every Matrix
event the message became (its text and each attachment). The runtime redacts as the
bridge bot (a ghost may redact only its own events; a moderator's delete on Discord is
anyone's), once even when several bot logins of the guild report it.

Matrix -> Discord: a redaction deletes the message where it was sent: a relayed message
through the channel's webhook (or as the bot, for one it sent with a label), a personal
login's through its account. A Matrix moderator's redaction of another's message (a
Discord user's, or another Matrix user's) deletes it as the moderator's login, the bot for
a relayed moderator: Discord refuses it without Manage Messages, and the moderator is told
why (``SendRefused``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.connector import ModeratesMessages, RedactionHandler, SendRefused
from bridgekit.contract.events import MatrixRedaction, PortalKey, RemoteMessageID, RemoteRedaction

from .ids import portal_key
from .outbound import UNKNOWN_WEBHOOK

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.deletes")

UNKNOWN_MESSAGE = 10008


class Deletes:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        connector.inbound.register(
            "raw_message_delete", self.on_delete, lambda a: self._portal_channel(a[0])
        )
        connector.inbound.register(
            "raw_bulk_message_delete", self.on_bulk_delete, lambda a: self._portal_channel(a[0])
        )

    def _portal_channel(self, payload: Any) -> int:
        """The channel whose portal the delete belongs to: a thread's parent where the
        thread is known (the queue key; :meth:`_portal` resolves the same way)."""
        for client in self.connector.clients.values():
            channel = client.channel(int(payload.channel_id))
            if isinstance(channel, discord.Thread) and channel.parent_id is not None:
                return channel.parent_id
        return int(payload.channel_id)

    def _portal(self, client: DiscordClient, payload: Any) -> PortalKey | None:
        channel = client.channel(int(payload.channel_id))
        if channel is not None:
            return self.connector.portal_of(client, channel)
        if payload.guild_id is not None:
            return portal_key(payload.channel_id)
        return None  # a DM discord.py does not know: not one of this login's portals

    def _bridged_here(self, client: DiscordClient, guild_id: int | None) -> bool:
        return guild_id is None or not client.is_bot or client.bridges_guild(guild_id)

    # -- Discord -> Matrix ----------------------------------------------------------------------

    async def on_delete(
        self, client: DiscordClient, payload: discord.RawMessageDeleteEvent
    ) -> None:
        await self._redact(client, payload, [payload.message_id])

    async def on_bulk_delete(
        self, client: DiscordClient, payload: discord.RawBulkMessageDeleteEvent
    ) -> None:
        await self._redact(client, payload, sorted(payload.message_ids))

    async def _redact(self, client: DiscordClient, payload: Any, ids: list[int]) -> None:
        if not self._bridged_here(client, payload.guild_id):
            return
        portal = self._portal(client, payload)
        if portal is None:
            return
        for message_id in ids:
            if not self.connector.first_sight(f"d:{message_id}"):
                continue  # reported by another bot login too
            await self.connector.bridge.queue_remote_event(
                client.login.id,
                RemoteRedaction(portal=portal, target_id=RemoteMessageID(str(message_id))),
            )

    # -- Matrix -> Discord ----------------------------------------------------------------------

    async def matrix_redaction(self, client: DiscordClient, redaction: MatrixRedaction) -> None:
        if not redaction.target_id.isdigit():
            return  # a message Discord never had (the runtime's own id)
        message_id = int(redaction.target_id)
        channel_id = int(redaction.portal.id)
        thread_id = await self.connector.outbound.thread_of(message_id)
        if redaction.relayed_for is not None and not redaction.by_moderator:
            try:
                hook = await self.connector.webhooks.for_channel(client, channel_id)
            except discord.Forbidden:
                hook = None
            if hook is not None:
                try:
                    await hook.delete_message(
                        message_id,
                        thread=discord.Object(thread_id) if thread_id else discord.utils.MISSING,
                    )
                    return
                except discord.NotFound as e:
                    if e.code == UNKNOWN_WEBHOOK:
                        await self.connector.webhooks.forget(channel_id)
                        raise SendRefused("the message's webhook was deleted on Discord") from e
                    # not the webhook's: the bot sent it with a label; deleted as the bot
        gateway = client.gateway
        if gateway is None:
            raise SendRefused("the Discord login is not connected", retriable=True)
        target = thread_id or channel_id
        channel: Any = gateway.get_channel(target) or await gateway.fetch_channel(target)
        try:
            await channel.get_partial_message(message_id).delete()
        except discord.NotFound as e:
            if e.code != UNKNOWN_MESSAGE:
                raise
            log.debug("Message %s was already deleted on Discord", message_id)
        except discord.Forbidden as e:
            raise SendRefused(
                "Discord refused to delete that message: deleting another's message needs the "
                "Manage Messages permission",
                "m.no_permission",
            ) from e


class DiscordDeletes(RedactionHandler, ModeratesMessages):
    """:class:`~.client.DiscordClient`'s Matrix redactions (see :class:`Deletes`); a Matrix
    moderator's redaction of another's message deletes it as the login's account (the
    guild's bot for a relayed moderator), which needs Manage Messages."""

    connector: DiscordConnector

    async def handle_matrix_redaction(self, redaction: MatrixRedaction) -> None:
        await self.connector.deletes.matrix_redaction(self, redaction)  # type: ignore[arg-type]
