"""Matrix events to Slack Web API calls.

The runtime picks the login: a Matrix user's personal login of the workspace sends as that
user; anyone else is relayed by the workspace's app, which Slack shows under the Matrix
user's name and avatar (``username`` / ``icon_url``, the runtime's RelaySender).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import MatrixMessage, RemoteMessageID
from bridgekit.contract.results import MessageResult

from .html_to_mrkdwn import matrix_to_mrkdwn
from .ids import parse_chat_rid
from .threads import post_args

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.outbound")


class PillNames:
    """Matrix pills back to Slack ids, for :func:`matrix_to_mrkdwn`."""

    def __init__(self, connector: SlackConnector, team: str) -> None:
        self.connector = connector
        self.team = team

    def slack_user(self, mxid: str) -> str | None:
        return self.connector.slack_user_of(self.team, mxid)

    def slack_channel(self, room: str) -> str | None:
        return None


class Outbound:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector

    def channel_of(self, client: SlackClient, msg: Any) -> str:
        parsed = parse_chat_rid(msg.portal.id)
        if parsed is None or parsed[0] != client.team_id:
            raise ValueError("this room is not a chat of the login's Slack workspace")
        return parsed[1]

    def text_of(self, client: SlackClient, msg: MatrixMessage) -> str:
        """The Slack text of a message or edit: ``<!channel>``/``<!here>`` only from a sender
        with the power to mention the room (the runtime's ``may_mention_room``)."""
        content = msg.content
        text = matrix_to_mrkdwn(
            content.body,
            content.html,
            PillNames(self.connector, client.team_id),
            may_mention_room=bool(getattr(msg, "may_mention_room", False)),
        )
        if content.msgtype == "m.emote":
            text = f"_{text}_"
        return text

    def relay_args(self, msg: Any) -> dict[str, Any]:
        sender = getattr(msg, "relay_sender", None)
        if sender is None:
            return {}
        args: dict[str, Any] = {"username": sender.displayname}
        if sender.avatar_url:
            args["icon_url"] = sender.avatar_url
        return args

    async def send_message(self, client: SlackClient, msg: MatrixMessage) -> MessageResult:
        if self.connector.files.is_file(msg):
            return await self.connector.files.send(client, msg)
        channel = self.channel_of(client, msg)
        thread = post_args(msg)
        if msg.content.msgtype == "m.emote" and msg.relay_sender is None and not thread:
            # Slack's own /me (subtype me_message); it takes no thread and no relayed name,
            # so relayed and threaded emotes go as italics
            emote = dataclasses.replace(msg, content=dataclasses.replace(msg.content))
            emote.content.msgtype = "m.text"
            data = await client.call(
                "chat.meMessage", channel=channel, text=self.text_of(client, emote)
            )
        else:
            data = await client.call(
                "chat.postMessage",
                channel=channel,
                text=self.text_of(client, msg),
                unfurl_links=False,
                **thread,
                **self.relay_args(msg),
            )
        ts = str(data.get("ts") or "")
        return MessageResult(remote_id=RemoteMessageID(ts) if ts else None)
