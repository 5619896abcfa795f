"""Channel joins and leaves on Slack -> ghosts joining and leaving the portal room, bounded.

A channel of up to ``member_list_limit`` members has its members bridged one by one (its list
when the portal is made, :mod:`.chats`; then ``member_joined_channel`` /
``member_left_channel``). A larger one gets no list and no join events: its ghosts join as they
speak, so a 5,000-member channel costs the homeserver a membership event per person who talks,
not per person in it (matrix-appservice-slack #711). Leaves are always bridged (a ghost that
never joined costs nothing). The ``channel_join`` / ``channel_leave`` messages Slack posts are
not messages anyone said: they are dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import RemoteMembership

from .ids import user_rid

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.members")

MEMBER_MESSAGES = ("channel_join", "channel_leave", "group_join", "group_leave")


class Members:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        connector.inbound.on("member_joined_channel", self.joined)
        connector.inbound.on("member_left_channel", self.left)
        for subtype in MEMBER_MESSAGES:
            connector.inbound.on_subtype(subtype, self.member_message)

    async def member_message(
        self, client: SlackClient, event: dict[str, Any], payload: Any
    ) -> None:
        log.debug("Slack %s message not bridged (membership comes as events)", event.get("subtype"))

    def _parse(self, client: SlackClient, event: dict[str, Any]) -> tuple[str, str] | None:
        channel, user = event.get("channel"), event.get("user")
        if not isinstance(channel, str) or not isinstance(user, str) or not channel or not user:
            log.warning("Skipping a membership event without channel or user")
            return None
        if user == client.meta.user_id:
            return None  # the app's own bot user: the bridge bot is in the room already
        if self.connector.personal_login(client.team_id, user) is not None:
            return None  # a Matrix user's own account: not a ghost's membership
        return channel, user

    async def joined(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        parsed = self._parse(client, event)
        if parsed is None:
            return
        channel, user = parsed
        chats = self.connector.chats
        count = chats.sizes.get((client.team_id, channel))
        small = await chats.small(client, channel)
        if count is not None:
            chats.note_size(client.team_id, channel, count + 1)
        if not small:
            log.debug("Join of %s in large channel %s: joins when they speak", user, channel)
            return
        await self._queue(client, channel, user, event, "join")

    async def left(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        parsed = self._parse(client, event)
        if parsed is None:
            return
        channel, user = parsed
        count = self.connector.chats.sizes.get((client.team_id, channel))
        if count is not None:
            self.connector.chats.note_size(client.team_id, channel, count - 1)
        await self._queue(client, channel, user, event, "leave")

    async def _queue(
        self, client: SlackClient, channel: str, user: str, event: dict[str, Any], membership: str
    ) -> None:
        inbound = self.connector.inbound
        target = user_rid(client.team_id, user)
        await inbound.queue(
            client,
            RemoteMembership(
                inbound.portal_of(client, channel, event),
                sender=inbound.sender(client, user),
                target=target,
                membership=membership,
            ),
        )
