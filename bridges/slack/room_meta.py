"""Matrix -> Slack: a portal room's name and topic, and read markers, done by a personal login.

The :class:`RoomMetaHandler` and :class:`ReadReceiptHandler` capabilities of
:class:`~bridges.slack.client.SlackClient`. Only a personal login (a Slack user's own token)
changes a channel or moves a read marker: the app login's bot is nobody's Slack self, and the
runtime never hands a relayed user's change to a client at all.

* A room name becomes ``conversations.rename``, normalised to Slack's rules (lower case,
  ``-`` for spaces, accents dropped, letters, digits, ``-`` and ``_`` only, 80 at most; a
  leading ``#`` is the bridge's own). A name with nothing left, or one Slack refuses
  (``name_taken``, no right to rename, ...), gets a notice in the room
  and the room takes the channel's name back.
* A room topic becomes ``conversations.setTopic`` (Slack keeps 250 characters).
* Slack reports each change back (``channel_rename``, a ``channel_topic`` message). The
  runtime notes the value the room shows before the change comes here, so the report of the
  same value is no change; a normalised name comes back as the name Slack gave the channel.
* A read receipt becomes ``conversations.mark`` with the user's token, where the token has the
  scope (``channels:write``, ``groups:write``, ``im:write``, ``mpim:write``); on
  ``missing_scope`` the login stops trying, logged once, without telling the user each time.

Slack -> Matrix read markers are not bridged: the Events API sends apps no read event for a
channel (``channel_marked`` / ``im_marked`` go only to the user's own RTM clients), so there is
nothing to receive.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bridgekit.contract.connector import ReadReceiptHandler, RoomMetaHandler
from bridgekit.contract.events import (
    MatrixReadReceipt,
    MatrixRoomMeta,
    PortalKey,
    RemoteChatInfoChange,
)

from .api import error_code
from .chats import chat_name, chat_topic
from .ids import parse_chat_rid

if TYPE_CHECKING:
    from .client import SlackClient

log = logging.getLogger("bridgekit.slack.room_meta")

NAME_MAX = 80
TOPIC_MAX = 250

#: Slack's answers to a rename, said plainly in the notice.
RENAME_REFUSALS = {
    "name_taken": "another channel of the workspace has that name",
    "not_authorized": "Slack does not let you rename it",
    "restricted_action": "the workspace does not let you rename channels",
    "user_is_restricted": "the workspace does not let you rename channels",
    "not_in_channel": "you are not in it on Slack",
    "is_archived": "it is archived",
    "missing_scope": "your Slack token lacks the scope (channels:write / groups:write)",
}


def slack_channel_name(name: str) -> str:
    """``name`` by Slack's rules for channel names ("" when nothing of it is left)."""
    name = unicodedata.normalize("NFKD", name.strip().removeprefix("#").lower())
    name = re.sub(r"\s+", "-", name)
    name = re.sub(r"[^a-z0-9_-]", "", name)
    name = re.sub(r"-{2,}", "-", name).strip("-_")
    return name[:NAME_MAX].rstrip("-_")


def slack_topic(topic: str) -> str:
    """One line of at most :data:`TOPIC_MAX` characters (Slack answers ``too_long``)."""
    topic = " ".join(topic.split())
    return topic if len(topic) <= TOPIC_MAX else topic[: TOPIC_MAX - 1] + "…"


def ts_key(ts: str) -> tuple[int, int] | None:
    """A message ``ts`` ("1712345678.000100") as a sortable pair; None if it is not one."""
    m = re.fullmatch(r"(\d{1,12})\.(\d{1,9})", ts)
    return (int(m.group(1)), int(m.group(2))) if m else None


class SlackRoomMeta(RoomMetaHandler, ReadReceiptHandler):
    """Room name, topic and read markers of a personal login, sent to Slack."""

    #: Set when Slack said the token lacks the scope of ``conversations.mark``.
    _marks_refused: bool = False

    async def handle_matrix_room_meta(self: SlackClient, change: MatrixRoomMeta) -> None:
        parsed = parse_chat_rid(change.portal.id)
        if parsed is None or (change.name is None and change.topic is None):
            return
        channel, portal = parsed[1], change.portal
        if self.is_app:  # the workspace's bot is nobody's Slack self
            await self._refused(
                portal,
                channel,
                "The Slack channel was not changed: only a personal Slack login (`login slack`, "
                "the user token) changes a channel, as its Slack user.",
                name=change.name is not None,
                topic=change.topic is not None,
            )
            return
        if change.topic is not None:
            try:
                await self.call(
                    "conversations.setTopic", channel=channel, topic=slack_topic(change.topic)
                )
            except SlackApiError as e:
                text = f"The Slack topic was not changed: {error_code(e)}."
                await self._refused(portal, channel, text, topic=True)
        if change.name is None:
            return
        why = ""
        name = slack_channel_name(change.name)
        if portal.receiver:
            why = "a Slack direct message has no name of its own"
        elif not name:
            why = "a Slack channel name needs letters or digits"
        else:
            try:
                await self.call("conversations.rename", channel=channel, name=name)
            except SlackApiError as e:
                code = error_code(e)
                why = RENAME_REFUSALS.get(code, code)
        if why:
            text = f"The Slack channel was not renamed: {why}."
            await self._refused(portal, channel, text, name=True)

    async def _refused(
        self: SlackClient,
        portal: PortalKey,
        channel: str,
        text: str,
        *,
        name: bool = False,
        topic: bool = False,
    ) -> None:
        """Tell the room why, and give it the channel's name and/or topic back."""
        await self.connector.bridge.notify_portal(portal, text)
        try:
            conv = await self.connector.chats.conversation(self, channel)
        except Exception as e:  # noqa: BLE001 - the room keeps what it shows then
            log.info("conversations.info %s: %s", channel, e)
            return
        back = RemoteChatInfoChange(
            portal,
            name=chat_name(conv) if name else None,
            topic=(chat_topic(conv) or "") if topic else None,
        )
        if back.name is not None or back.topic is not None:
            await self.connector.bridge.queue_remote_event(self.login.id, back)

    async def handle_matrix_read_receipt(self: SlackClient, receipt: MatrixReadReceipt) -> None:
        if self.is_app or self._marks_refused or not receipt.remote_id:
            return
        parsed = parse_chat_rid(receipt.portal.id)
        at = ts_key(receipt.remote_id)
        if parsed is None or at is None:
            return
        # Each of the user's devices sends its receipt: the marker only moves forward.
        read: dict[str, tuple[int, int]] = self.__dict__.setdefault("_read_up_to", {})
        if read.get(parsed[1], (-1, -1)) >= at:
            return
        read[parsed[1]] = at
        try:
            await self.call("conversations.mark", channel=parsed[1], ts=receipt.remote_id)
        except SlackApiError as e:
            code = error_code(e)
            if code == "missing_scope":
                self._marks_refused = True
                log.warning(
                    "Slack login %s: the token may not move read markers (missing_scope: "
                    "channels:write, groups:write, im:write, mpim:write); not trying again",
                    self.login.id,
                )
            else:
                log.info("conversations.mark %s: %s", parsed[1], code)
