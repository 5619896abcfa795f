"""Guild messages Discord sent without their content (a bot without the Message Content
intent): never bridged as empty messages.

Such a message is held back (not bridged: the catch-up after the intent is enabled and the
bridge restarted reads it again, with its content, since the portal's newest bridged
message is older) and its portal is told why, once (kept in the kv store, so once across
restarts too). The login's state says so as well (``ping``), even where the application's
flags claimed the intent was enabled.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord

from bridgekit.contract.connector import BridgeStateEvent

from .intents import WHERE, looks_emptied, missing_notice

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.emptied")

MESSAGE_CONTENT = "Message Content Intent"
NOTICE = (
    "Messages from this Discord channel arrive without their content: the bridge's bot lacks "
    f"the {MESSAGE_CONTENT}, so they are not bridged. An admin can enable it in the {WHERE} "
    "and restart the bridge: what was said meanwhile is then caught up."
)


class Emptied:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def held_back(self, client: DiscordClient, message: discord.Message) -> bool:
        """True if ``message`` came without its content (and was dealt with)."""
        if not client.is_bot or not looks_emptied(message, client.user_id):
            return False
        log.info("Discord message %s came without content: not bridged", message.id)
        bridge = self.connector.bridge
        if MESSAGE_CONTENT not in client.missing_intents:
            client.missing_intents.append(MESSAGE_CONTENT)
            if client.connected:
                bridge.report_state(
                    client.login.id,
                    BridgeStateEvent.CONNECTED,
                    missing_notice(client.missing_intents),
                )
        portal = self.connector.portal_of(client, message.channel)
        key = f"emptied-notice:{portal.id}"
        if await bridge.get_kv(key) is None and await bridge.notify_portal(portal, NOTICE):
            await bridge.set_kv(key, "1")
        return True
