"""``user_change`` -> the ghost's name and avatar follow the Slack profile.

Slack sends ``user_change`` to every app of the workspace for every profile change (also ones
the bridge does not show, such as a status): the cache of :mod:`.users` is replaced and a
:class:`RemoteUserInfoChange` queued; the runtime skips what the ghost already shows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import EventSender, PortalKey, RemoteUserInfoChange

from .ids import is_slack_id, user_rid
from .users import user_info_of

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.user_updates")


class UserUpdates:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        connector.inbound.on("user_change", self.changed)

    async def changed(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        user = event.get("user")
        uid = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user, dict) or not isinstance(uid, str) or not is_slack_id(uid):
            log.warning("Skipping a user_change without a user")
            return
        team = user.get("team_id") or client.team_id
        if team != client.team_id:
            return  # a user of another workspace (Slack Connect): not this app's ghost
        self.connector.users.update(client.team_id, user)
        info = user_info_of(user)
        await self.connector.inbound.queue(
            client,
            RemoteUserInfoChange(
                PortalKey(""),
                sender=EventSender(user_rid(client.team_id, uid)),
                name=info.name or None,
                avatar_url=info.avatar_url or "",
                is_bot=info.is_bot,
            ),
        )
