"""Gateway events -> remote events, queued in order per portal.

:meth:`Inbound.route` runs inside discord.py's dispatch, synchronously and in gateway order:
it only puts the event's handling on its portal's queue (the parent channel's, for a
thread), so a message that waits for a download is not overtaken by the next one of its
channel, while other channels go on (:class:`~bridgekit.outbox.ordering.OrderedExecutor`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.events import RemoteMessage, RemoteMessageID
from bridgekit.outbox.ordering import OrderedExecutor

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.inbound")

Handler = Callable[..., Awaitable[None]]


def portal_channel_id(channel: Any) -> int | None:
    """The channel whose portal an event belongs to: a thread's parent, else the channel."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return getattr(channel, "id", None)


class Inbound:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self.queue = OrderedExecutor("discord-inbound")
        #: Gateway event name -> (handler, the channel id its portal is keyed by).
        self.handlers: dict[str, tuple[Handler, Callable[[tuple[Any, ...]], Any]]] = {}
        self.register("message", self.on_message, lambda a: portal_channel_id(a[0].channel))

    def register(
        self, event: str, handler: Handler, channel_of: Callable[[tuple[Any, ...]], Any]
    ) -> None:
        """Handle gateway event ``event`` (discord.py's name, without ``on_``) with
        ``handler(client, *args)``, in order with the other events of the channel
        ``channel_of(args)`` names (None: an order of its own)."""
        self.handlers[event] = (handler, channel_of)

    def route(self, client: DiscordClient, event: str, args: tuple[Any, ...]) -> None:
        """Called synchronously from discord.py's dispatch, in gateway order."""
        if event in ("ready", "resumed"):
            client.gateway_ready()
            return
        if event == "connect":
            client.gateway_up()
            return
        if event == "disconnect":
            client.gateway_lost()
            return
        entry = self.handlers.get(event)
        if entry is None:
            return
        handler, channel_of = entry
        try:
            key = channel_of(args)
        except Exception:  # noqa: BLE001 - a malformed event: logged, skipped
            log.warning("Discord %s event without a channel, skipped", event, exc_info=True)
            return
        self.queue.submit(
            key if key is not None else event, lambda: self._live(client, handler, args)
        )

    @staticmethod
    async def _live(client: DiscordClient, handler: Handler, args: tuple[Any, ...]) -> None:
        """A live event waits for the login's catch-ups to be queued (catchup.py)."""
        await client.live_gate.wait()
        await handler(client, *args)

    async def stop(self) -> None:
        await self.queue.stop()

    # -- messages -----------------------------------------------------------------------------

    async def on_message(self, client: DiscordClient, message: discord.Message) -> None:
        if not await self.connector.should_bridge(client, message):
            return
        if await self.held_back_empty(client, message):
            return
        event = await self.to_remote(client, message)
        if event is not None:
            await self.connector.bridge.queue_remote_event(client.login.id, event)

    async def held_back_empty(self, client: DiscordClient, message: discord.Message) -> bool:
        """A message Discord sent without its content is not bridged (emptied.py)."""
        return await self.connector.emptied.held_back(client, message)

    async def to_remote(
        self, client: DiscordClient, message: discord.Message
    ) -> RemoteMessage | None:
        """The remote message for a Discord message (None: nothing to bridge)."""
        channel_id = portal_channel_id(message.channel)
        if channel_id is None or not self.connector.channels.carries(message):
            return None
        content = await self.connector.render.content(client, message)
        self.connector.threads.decorate(message, content)
        await self.connector.threads.ensure_root(client, message)
        thread = message.channel if isinstance(message.channel, discord.Thread) else None
        if thread is not None and message.id != thread.id:
            content.thread_root = RemoteMessageID(str(thread.id))
        ref = message.reference
        portal = self.connector.portal_of(client, message.channel)
        if ref is not None and ref.message_id and ref.message_id != getattr(thread, "id", None):
            content.reply_to = RemoteMessageID(str(ref.message_id))
            await self.connector.replies.quote_unbridged(client, message, portal, content)
        parts = await self.connector.media.parts(client, message, content)
        return RemoteMessage(
            portal=portal,
            sender=self.connector.sender_of(client, message.author, message.channel),
            timestamp=message.created_at.timestamp(),
            id=RemoteMessageID(str(message.id)),
            content=content,
            parts=parts,
        )
