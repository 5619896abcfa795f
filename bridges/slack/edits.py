"""Edits and deletes, both ways.

Slack -> Matrix: ``message_changed`` carries the whole message as it now is, with its own
``ts`` (the original's): the edit always replaces the original Matrix event, never an earlier
edit. Not every ``message_changed`` is an edit: Slack also sends one when a link unfurls,
attachments change or a thread gets a reply (the parent's reply count): only a change of the
text is bridged, once even when two app logins of the workspace report the same change (the
same ``ts``). A thread root deleted while it has replies stays as a ``tombstone``: that is
a delete. ``message_deleted`` removes every Matrix event the message became (its parts, both
copies of a broadcast). The echo of the bridge's own ``chat.update`` is dropped: by ``bot_id``
for the app's, by a note (:mod:`.echoes`) for a personal token's, which looks like the user's
own edit and would otherwise be edited again on Matrix.

Matrix -> Slack: ``chat.update`` / ``chat.delete`` with the token the message was sent with:
a personal login's for its user, the app's for relayed messages (the runtime hands relayed
edits and deletes to the app, which posted them; Slack keeps showing them under the relayed
name).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from bridgekit.contract.connector import EditHandler, RedactionHandler, SendRefused
from bridgekit.contract.events import (
    MatrixEdit,
    MatrixRedaction,
    RemoteEdit,
    RemoteMessageID,
    RemoteRedaction,
)
from bridgekit.contract.results import MessageResult

from .echoes import Echoes
from .threads import CHANNEL_PART, channel_copy, is_broadcast

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.edits")

#: Parts of a message whose text can be edited (files have none).
TEXT_PARTS = ("", CHANNEL_PART)
#: Changes remembered to recognise one reported twice (bounded, per process).
SEEN_CHANGES = 10_000


class Edits:
    """The inbound handlers (``message_changed``, ``message_deleted``) and the Web API calls
    behind :class:`SlackEdits`."""

    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        self.echoes = Echoes()
        #: Changes bridged, by (team, channel, the change's own ts): the same change reported
        #: to two app logins (two deliveries, two event ids) is one edit.
        self._changes: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def register(self) -> None:
        self.connector.inbound.on_subtype("message_changed", self.changed)
        self.connector.inbound.on_subtype("message_deleted", self.deleted)

    # -- Slack -> Matrix -------------------------------------------------------------------------

    async def changed(
        self, client: SlackClient, event: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        inbound = self.connector.inbound
        channel = str(event.get("channel") or "")
        message = event.get("message")
        if not channel or not isinstance(message, dict) or not message.get("ts"):
            log.warning("Skipping a message_changed without channel or message")
            return
        ts = str(message["ts"])
        portal = inbound.portal_of(client, channel, event)
        if message.get("subtype") == "tombstone":
            await inbound.queue(client, RemoteRedaction(portal, target_id=RemoteMessageID(ts)))
            return
        text = str(message.get("text") or "")
        previous = event.get("previous_message")
        before = previous.get("text") if isinstance(previous, dict) else None
        if before is None and not message.get("edited"):
            return  # no way to tell an edit: unfurls and reply counts have no "edited"
        if before == text:
            return  # attachments, unfurls, reply counts: the text did not change
        if self.connector.is_own_relay(client, message):
            return  # our own chat.update of a relayed message
        change = (client.team_id, channel, str(event.get("ts") or ""))
        if change in self._changes:
            return  # the same change, delivered to another app login
        if self.echoes.is_echo(("edit", channel, ts)):
            self._seen_change(change)  # (its second delivery is no edit either)
            return  # our own chat.update with a personal token
        user = str(message.get("user") or "")
        if not user:
            return
        content = await inbound.content(client, {**message, "channel": channel})
        sender = inbound.sender(client, user)
        target = RemoteMessageID(ts)
        stamp = _event_time(event)
        await inbound.queue(
            client,
            RemoteEdit(portal, sender, stamp, target_id=target, content=content),
        )
        if is_broadcast(message):
            edit = RemoteEdit(
                portal,
                sender,
                stamp,
                target_id=target,
                content=channel_copy(content),
                target_part=CHANNEL_PART,
            )
            await inbound.queue(client, edit)
        self._seen_change(change)

    def _seen_change(self, change: tuple[str, str, str]) -> None:
        if change[2]:  # a change without its own ts cannot be told from another
            self._changes[change] = None
            if len(self._changes) > SEEN_CHANGES:
                self._changes.popitem(last=False)

    async def deleted(
        self, client: SlackClient, event: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        inbound = self.connector.inbound
        channel = str(event.get("channel") or "")
        ts = str(event.get("deleted_ts") or "")
        if not channel or not ts:
            log.warning("Skipping a message_deleted without channel or deleted_ts")
            return
        portal = inbound.portal_of(client, channel, event)
        previous = event.get("previous_message")
        author = previous.get("user") if isinstance(previous, dict) else None
        relayed = isinstance(previous, dict) and self.connector.is_own_relay(client, previous)
        # The author's ghost (or double puppet) redacts its own event; a relayed message's
        # event is the Matrix user's, which only the bridge bot may redact.
        sender = inbound.sender(client, str(author)) if author and not relayed else None
        await inbound.queue(
            client,
            RemoteRedaction(portal, sender, _event_time(event), target_id=RemoteMessageID(ts)),
        )

    # -- Matrix -> Slack -------------------------------------------------------------------------

    async def matrix_edit(self, client: SlackClient, edit: MatrixEdit) -> MessageResult | None:
        if edit.target_part not in TEXT_PARTS:
            raise SendRefused("a file cannot be edited on Slack", "m.unsupported")
        outbound = self.connector.outbound
        channel = outbound.channel_of(client, edit)
        text = outbound.text_of(client, edit)
        ts = str(edit.target_id)
        if client.is_app:  # its echo has the app's bot_id: recognised without a note
            await client.call("chat.update", channel=channel, ts=ts, text=text)
            return None
        # by message, not text: Slack may store the text other than it was sent
        key = ("edit", channel, ts)
        self.echoes.expect(key)
        try:
            await client.call("chat.update", channel=channel, ts=ts, text=text)
        except BaseException:
            self.echoes.forget(key)
            raise
        return None

    async def matrix_redaction(self, client: SlackClient, redaction: MatrixRedaction) -> None:
        # Slack's message_deleted for it finds nothing left to redact: the runtime holds the
        # portal's remote events until it has forgotten the message.
        channel = self.connector.outbound.channel_of(client, redaction)
        await client.call("chat.delete", channel=channel, ts=str(redaction.target_id))


def _event_time(event: dict[str, Any]) -> float | None:
    try:
        return float(event.get("event_ts") or event.get("ts") or 0) or None
    except (TypeError, ValueError):
        return None


class SlackEdits(EditHandler, RedactionHandler):
    """:class:`~.client.SlackClient`'s edits and deletes (see :class:`Edits`)."""

    connector: SlackConnector

    async def handle_matrix_edit(self, edit: MatrixEdit) -> MessageResult | None:
        return await self.connector.edits.matrix_edit(self, edit)  # type: ignore[arg-type]

    async def handle_matrix_redaction(self, redaction: MatrixRedaction) -> None:
        await self.connector.edits.matrix_redaction(self, redaction)  # type: ignore[arg-type]
