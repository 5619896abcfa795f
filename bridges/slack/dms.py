"""DMs and group DMs: whose portals they are.

A DM or group DM is private to the people in it, so its portal belongs to a login (the
portal key's receiver, see :mod:`.ids`): each bridge user in the conversation has their own
portal of it. Slack sends the app one event per change however many of the app's parties see
it, and its ``authorizations`` names only one of them (Slack's Events API since 2021; the rest
would take ``apps.event.authorizations.list``), so the bridge asks Slack once who is in the
conversation (``conversations.members``, with the token of a member) and keeps the answer:
the members of a DM or group DM never change. The receivers are then the personal logins of
those members, and the app login when the app's bot user is one of them (a DM with the bot).

Each receiver gets its own copy of the event (:meth:`DirectChats.copies`); the sender is
"me" (double puppeting) only in the sender's own portal, a ghost in the others'.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import ChatMember, PortalKey, RemoteEvent

from .api import error_code
from .ids import is_dm_channel, parse_chat_rid, parse_user_rid
from .login import USER_FLOW

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.dms")

#: Conversations whose members are remembered (a DM's never change).
MAX_KNOWN = 10_000
#: What Slack answers a token that is not in a conversation.
NOT_A_MEMBER = frozenset({"channel_not_found", "not_in_channel", "missing_scope"})
#: Names in a group DM's room name (Slack allows 8 others).
GROUP_NAMES = 8


def event_channel(event: Mapping[str, Any]) -> str:
    """The conversation an event is in (a reaction names it in its ``item``)."""
    channel = event.get("channel")
    if isinstance(channel, dict):  # channel_rename, channel_created...
        channel = channel.get("id")
    if not isinstance(channel, str):
        item = event.get("item")
        channel = item.get("channel") if isinstance(item, dict) else None
    return channel if isinstance(channel, str) else ""


class DirectChats:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        #: (team, channel) -> the conversation's members, for DMs and group DMs only.
        self._members: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()

    def is_dm(self, team: str, channel: str, event: Mapping[str, Any]) -> bool:
        channel_type = event.get("channel_type")
        if channel_type in ("im", "mpim"):
            return True
        if (team, channel) in self._members:
            return True
        return channel_type is None and is_dm_channel(channel)

    async def learn(self, client: SlackClient, payload: Mapping[str, Any]) -> None:
        """Before an event of a DM is handled: who is in it (asked once per conversation)."""
        event = payload.get("event")
        if not isinstance(event, dict):
            return
        channel = event_channel(event)
        team = client.team_id
        if not channel or not self.is_dm(team, channel, event) or (team, channel) in self._members:
            return
        members = await self._ask_members(client, channel, payload)
        if members is None:
            return
        self._members[(team, channel)] = members
        while len(self._members) > MAX_KNOWN:
            self._members.popitem(last=False)

    def _readers(self, client: SlackClient, payload: Mapping[str, Any]) -> list[SlackClient]:
        """Logins whose token may read the conversation: the party ``authorizations`` names
        first (it sees the event), then the workspace's other personal logins."""
        named = {
            str(a.get("user_id") or "")
            for a in payload.get("authorizations") or []
            if isinstance(a, dict)
        }
        personal = self.personal_clients(client.team_id)
        first = [c for c in personal if c.meta.user_id in named]
        if client.meta.user_id in named:
            first.append(client)
        return first + [c for c in personal if c not in first]

    async def _ask_members(
        self, client: SlackClient, channel: str, payload: Mapping[str, Any]
    ) -> frozenset[str] | None:
        transient: Exception | None = None
        for reader in self._readers(client, payload)[:5]:
            try:
                data = await reader.call("conversations.members", channel=channel, limit=100)
            except Exception as e:  # noqa: BLE001 - another member's token may do
                log.debug("conversations.members %s as %s: %s", channel, reader.login.id, e)
                if error_code(e) not in NOT_A_MEMBER:
                    transient = e
                continue
            members = data.get("members")
            if isinstance(members, list):
                return frozenset(m for m in members if isinstance(m, str))
        if transient is not None:  # not stored, not acknowledged: Slack sends it again
            raise transient
        log.info("No login is in the DM %s: its event is not bridged", channel)
        return None

    def personal_clients(self, team: str) -> list[SlackClient]:
        return [
            c
            for c in self.connector.clients.values()
            if c.meta.kind == USER_FLOW and c.team_id == team and not c.dead
        ]

    def receivers(self, client: SlackClient, channel: str) -> list[str]:
        """The logins whose portal a DM is: its members' personal logins, and the app
        login when its bot user is in it. Empty when the members are unknown."""
        members = self._members.get((client.team_id, channel))
        if members is None:
            return []
        found = [
            c.login.id for c in self.personal_clients(client.team_id) if c.meta.user_id in members
        ]
        if client.is_app and client.meta.user_id in members:
            found.append(client.login.id)
        return found

    def copies(self, client: SlackClient, event: RemoteEvent) -> list[tuple[str, RemoteEvent]]:
        """(login id to queue with, event) for each portal of the event's DM: the sender is
        "me" only in their own portal, a ghost in the other members' portals."""
        parsed = parse_chat_rid(event.portal.id)
        receivers = self.receivers(client, parsed[1]) if parsed else []
        if not receivers:  # nobody of the bridge known to be in it: nobody's portal
            log.debug("Event of DM %s dropped: no login of its members", event.portal.id)
            return []
        out: list[tuple[str, RemoteEvent]] = []
        for receiver in receivers:
            copy = event
            if receiver != event.portal.receiver:
                copy = dataclasses.replace(event, portal=PortalKey(event.portal.id, receiver))
            sender = copy.sender
            if sender is not None and sender.is_me and sender.login_id != receiver:
                copy = dataclasses.replace(
                    copy, sender=dataclasses.replace(sender, is_me=False, login_id=None)
                )
            out.append((receiver, copy))
        return out

    async def group_name(self, client: SlackClient, members: list[ChatMember]) -> str | None:
        """A group DM's room name: its other members' names (Slack's own ``mpdm-a--b-1``
        names are not for people)."""
        names = []
        for member in members[:GROUP_NAMES]:
            parsed = parse_user_rid(member.remote_id)
            if parsed is not None and parsed[0] == client.team_id:
                names.append(await self.connector.users.name(client, parsed[1]))
        return ", ".join(sorted(names)) or None
