"""Slack events to remote events: what the workspace's app receives, as bridgekit events.

:meth:`Inbound.handle` takes one Events API payload (from Socket Mode or an HTTP push) and
queues what it means. Queued events are durable when ``queue_remote_event`` returns, which is
when the envelope may be acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteEvent,
    RemoteMessage,
    RemoteMessageID,
)

from .ids import is_dm_channel, portal_key, user_rid
from .mrkdwn import NameTable, SlackUser, mentioned_ids, mrkdwn_to_matrix
from .threads import broadcast_parts, thread_root

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.inbound")

#: Message subtypes that are a message someone said (others are channel changes, joins...).
SAID = frozenset({None, "", "thread_broadcast", "file_share", "me_message", "bot_message"})


#: What handles one kind of event (or message subtype): (receiving app login, the event,
#: the whole payload).
EventHandler = Callable[["SlackClient", dict[str, Any], dict[str, Any]], Awaitable[None]]


class Inbound:
    """Dispatches events by ``type`` (and ``message`` events by ``subtype``) to the handlers
    the connector's feature modules register (:meth:`on`, :meth:`on_subtype`)."""

    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        self.handlers: dict[str, EventHandler] = {}
        self.subtypes: dict[str, EventHandler] = {}

    def on(self, event_type: str, handler: EventHandler) -> None:
        self.handlers[event_type] = handler

    def on_subtype(self, subtype: str, handler: EventHandler) -> None:
        self.subtypes[subtype] = handler

    async def handle(self, client: SlackClient, payload: dict[str, Any]) -> None:
        event: dict[str, Any] = payload["event"]
        kind = str(event.get("type") or "")
        if kind == "message":
            subtype = event.get("subtype")
            handler = self.subtypes.get(subtype) if subtype else None
            if handler is not None:
                await handler(client, event, payload)
            else:
                await self.message(client, event)
            return
        handler = self.handlers.get(kind)
        if handler is not None:
            await handler(client, event, payload)
        else:
            log.debug("Slack event %s not bridged", kind)

    # -- helpers ----------------------------------------------------------------------------------

    def portal_of(self, client: SlackClient, channel: str, event: dict[str, Any]) -> PortalKey:
        """The portal of ``channel``: shared for channels, the login's own for DMs."""
        channel_type = event.get("channel_type")
        if channel_type in ("im", "mpim") or (channel_type is None and is_dm_channel(channel)):
            return portal_key(client.team_id, channel, self.connector.dm_receiver(client, event))
        return portal_key(client.team_id, channel)

    def sender(self, client: SlackClient, user: str, name: str | None = None) -> EventSender:
        """A Slack user as a sender: a personal login's own user speaks from their Matrix
        account (double puppeting), anyone else through their ghost."""
        login = self.connector.personal_login(client.team_id, user)
        return EventSender(
            user_rid(client.team_id, user),
            is_me=login is not None,
            login_id=login,
            name=name,
        )

    async def names(self, client: SlackClient, text: str) -> NameTable:
        """The users a text mentions, as Matrix shows them (ghost or puppeted user, name)."""
        found = mentioned_ids(text)
        users: dict[str, SlackUser] = {}
        for uid in found.users[:50]:
            name = await self.connector.users.name(client, uid)
            mxid = self.connector.matrix_user_of(client.team_id, uid)
            users[uid] = SlackUser(mxid, name)
        return NameTable(users=users)

    async def content(self, client: SlackClient, event: dict[str, Any]) -> MessageContent:
        text = str(event.get("text") or "")
        body, html = mrkdwn_to_matrix(text, await self.names(client, text))
        content = MessageContent(body, html, thread_root=thread_root(event))
        if event.get("subtype") == "me_message":
            content.msgtype = "m.emote"
        return content

    async def queue(self, client: SlackClient, event: RemoteEvent) -> None:
        await self.connector.bridge.queue_remote_event(client.login.id, event)

    # -- messages ---------------------------------------------------------------------------------

    async def message(self, client: SlackClient, event: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        channel = str(event.get("channel") or "")
        ts = str(event.get("ts") or "")
        if not channel or not ts:
            log.warning("Skipping a Slack message without channel or ts")
            return
        if subtype not in SAID:
            log.debug("Slack message subtype %s not bridged", subtype)
            return
        if self.connector.is_own_relay(client, event):
            return  # a Matrix message the app relayed: already in the room
        user = str(event.get("user") or "")
        if not user:
            log.debug("Slack message %s without a user not bridged", ts)
            return
        portal = self.portal_of(client, channel, event)
        msg = RemoteMessage(
            portal=portal,
            sender=self.sender(client, user),
            timestamp=float(ts),
            id=RemoteMessageID(ts),
            content=await self.content(client, event),
        )
        await self.queue(client, broadcast_parts(event, msg))
