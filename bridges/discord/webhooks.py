"""One webhook per channel, through which Matrix users speak on Discord.

A webhook message shows the name and avatar it is sent with, so a relayed Matrix user looks
like themself. The bridge makes one webhook per channel (threads post through their parent's,
with ``thread_id``) and keeps its id and token (key/value store), so after a restart the same
webhook is used, and a message from it that comes back over the gateway is known as the
bridge's own (an echo) even before anything was sent in this process.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.webhooks")

WEBHOOK_NAME = "Matrix bridge"


class Webhooks:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self._by_channel: dict[int, discord.Webhook] = {}
        #: Ids of webhooks the bridge made (its own messages) and of others (people's).
        self._ours: set[int] = set()
        self._foreign: set[int] = set()

    def _key(self, channel_id: int) -> str:
        return f"webhook:{channel_id}"

    async def for_channel(self, client: DiscordClient, channel_id: int) -> discord.Webhook:
        """The channel's webhook: the one kept, else a new one."""
        hook = self._by_channel.get(channel_id)
        if hook is not None:
            return hook
        gateway = client.gateway
        assert gateway is not None
        kept = await self.connector.bridge.get_kv(self._key(channel_id))
        if kept:
            hook_id, _, token = kept.partition(":")
            hook = discord.Webhook.partial(int(hook_id), token, client=gateway)
        else:
            data = await gateway.http.create_webhook(channel_id, name=WEBHOOK_NAME)
            hook = discord.Webhook.partial(int(data["id"]), str(data["token"]), client=gateway)
            await self.connector.bridge.set_kv(self._key(channel_id), f"{hook.id}:{hook.token}")
        self._by_channel[channel_id] = hook
        self._ours.add(hook.id)
        return hook

    async def forget(self, channel_id: int) -> None:
        """The channel's webhook is gone (deleted on Discord): the next send makes a new one."""
        hook = self._by_channel.pop(channel_id, None)
        if hook is not None:
            self._ours.discard(hook.id)
        await self.connector.bridge.set_kv(self._key(channel_id), None)

    async def is_ours(self, client: DiscordClient, channel_id: int, webhook_id: int) -> bool:
        """Whether a message's webhook is one the bridge made (its message is an echo)."""
        if webhook_id in self._ours:
            return True
        if webhook_id in self._foreign:
            return False
        kept = await self.connector.bridge.get_kv(self._key(channel_id))
        if kept and kept.partition(":")[0] == str(webhook_id):
            self._ours.add(webhook_id)
            return True
        self._foreign.add(webhook_id)
        return False
