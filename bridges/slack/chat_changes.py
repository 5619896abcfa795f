"""Channel name, topic and purpose changes on Slack -> the portal room's name and topic.

Slack tells a rename twice (a ``channel_rename`` / ``group_rename`` event and a ``channel_name``
message); both become the same :class:`RemoteChatInfoChange`, and the runtime skips what the
room already shows. The room topic is the channel's topic, else its purpose (as
:func:`.chats.chat_topic` reads ``conversations.info``): a purpose change does not hide a topic.
The change messages themselves are not bridged as messages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import RemoteChatInfoChange

from .chats import chat_name, chat_topic

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.chat_changes")

RENAMES = ("channel_rename", "group_rename")
NAME_SUBTYPES = ("channel_name", "group_name")
TOPIC_SUBTYPES = ("channel_topic", "group_topic", "channel_purpose", "group_purpose")


class ChatChanges:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        for kind in RENAMES:
            connector.inbound.on(kind, self.renamed)
        for subtype in NAME_SUBTYPES:
            connector.inbound.on_subtype(subtype, self.name_message)
        for subtype in TOPIC_SUBTYPES:
            connector.inbound.on_subtype(subtype, self.topic_message)
        connector.inbound.on("team_rename", self.team_renamed)

    async def team_renamed(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        """The workspace's space takes the new name with the next chat info (a portal made or
        resynced): only then is a portal of the workspace at hand."""
        self.connector.chats.forget_team(client.team_id)

    async def renamed(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        channel = event.get("channel")
        if not isinstance(channel, dict) or not isinstance(channel.get("id"), str):
            log.warning("Skipping a rename without a channel")
            return
        if channel.get("is_mpim"):
            return  # a group DM's name is its members'
        name = chat_name(channel)
        if name:
            await self._change(client, channel["id"], event, name=name)

    async def name_message(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        name = event.get("name")
        channel = event.get("channel")
        if isinstance(name, str) and name and isinstance(channel, str):
            await self._change(client, channel, event, name=f"#{name}", user=event.get("user"))

    async def topic_message(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        channel = event.get("channel")
        if not isinstance(channel, str) or not channel:
            return
        try:
            topic = chat_topic(await self.connector.chats.conversation(client, channel))
        except Exception as e:  # noqa: BLE001 - the event's own value then
            log.info("conversations.info %s: %s", channel, e)
            value = event.get("topic") if "topic" in str(event.get("subtype")) else None
            if value is None:
                return  # a purpose: whether a topic hides it is not known
            topic = str(value)
        await self._change(client, channel, event, topic=topic or "", user=event.get("user"))

    async def _change(
        self,
        client: SlackClient,
        channel: str,
        event: dict[str, Any],
        *,
        name: str | None = None,
        topic: str | None = None,
        user: Any = None,
    ) -> None:
        inbound = self.connector.inbound
        portal = inbound.portal_of(client, channel, event)
        ts = event.get("ts") or event.get("event_ts")
        try:
            when = float(ts) if ts else None
        except (TypeError, ValueError):
            when = None
        sender = inbound.sender(client, user) if isinstance(user, str) and user else None
        await inbound.queue(
            client,
            RemoteChatInfoChange(portal, sender=sender, timestamp=when, name=name, topic=topic),
        )
