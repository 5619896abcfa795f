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

from .ids import portal_key, user_rid
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
        await self._dispatch(client, event, payload)

    async def _dispatch(
        self, client: SlackClient, event: dict[str, Any], payload: dict[str, Any]
    ) -> None:
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
        if self.connector.dms.is_dm(client.team_id, channel, event):
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
        """Queue ``event`` with the receiving app login; an event of a DM goes to each of its
        portals, queued with the login each belongs to (:mod:`.dms`)."""
        if not event.portal.receiver:
            await self.connector.bridge.queue_remote_event(client.login.id, event)
            return
        for login_id, copy in self.connector.dms.copies(client, event):
            await self.connector.bridge.queue_remote_event(login_id, copy)

    # -- messages ---------------------------------------------------------------------------------

    async def message(self, client: SlackClient, event: dict[str, Any]) -> None:
        msg = await self.to_message(client, event)
        if msg is not None:
            await self.queue(client, msg)

    async def to_message(self, client: SlackClient, event: dict[str, Any]) -> RemoteMessage | None:
        """A Slack message (live, or from ``conversations.history``) as a remote message, or
        None if it is not something someone said (a join, a topic change, our own relay)."""
        subtype = event.get("subtype")
        channel = str(event.get("channel") or "")
        ts = str(event.get("ts") or "")
        if not channel or not ts:
            log.warning("Skipping a Slack message without channel or ts")
            return None
        if subtype not in SAID:
            log.debug("Slack message subtype %s not bridged", subtype)
            return None
        if self.connector.is_own_relay(client, event):
            return None  # a Matrix message the app relayed: already in the room
        user = str(event.get("user") or "")
        if not user:
            log.debug("Slack message %s without a user not bridged", ts)
            return None
        try:
            timestamp = float(ts)
        except ValueError:
            log.warning("Skipping a Slack message with a malformed ts")
            return None
        content = await self.content(client, event)
        msg = RemoteMessage(
            portal=self.portal_of(client, channel, event),
            sender=self.sender(client, user),
            timestamp=timestamp,
            id=RemoteMessageID(ts),
            content=content,
        )
        files = event.get("files")
        if isinstance(files, list) and files:  # text and files: one message in parts
            msg.parts = await self.connector.files.parts(client, event, content)
        return broadcast_parts(event, msg)
