"""Slack users as the bridge knows them: a cache in front of ``users.info``.

Names and avatars are asked once per user and kept; ``user_change`` events replace them
(:meth:`UserDirectory.update`). The cache is bounded so a 10,000-user workspace costs a
bounded amount of memory.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import RemoteUserID, UserInfo

from .ids import parse_user_rid

if TYPE_CHECKING:
    from .client import SlackClient

log = logging.getLogger("bridgekit.slack.users")

MAX_CACHED = 20_000


def display_name(user: dict[str, Any]) -> str:
    """The name Slack shows: the profile's display name, else the real name, else the handle."""
    profile = user.get("profile") or {}
    for value in (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return str(user.get("id") or "")


def avatar_url(user: dict[str, Any]) -> str | None:
    profile = user.get("profile") or {}
    for key in ("image_512", "image_192", "image_72", "image_original"):
        value = profile.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value
    return None


def user_info_of(user: dict[str, Any]) -> UserInfo:
    return UserInfo(
        name=display_name(user),
        avatar_url=avatar_url(user),
        is_bot=bool(user.get("is_bot")),
    )


class UserDirectory:
    def __init__(self) -> None:
        self._users: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def cached(self, team: str, user: str) -> dict[str, Any] | None:
        entry = self._users.get((team, user))
        if entry is not None:
            self._users.move_to_end((team, user))
        return entry

    def update(self, team: str, user: dict[str, Any]) -> None:
        uid = str(user.get("id") or "")
        if not uid:
            return
        self._users[(team, uid)] = user
        self._users.move_to_end((team, uid))
        while len(self._users) > MAX_CACHED:
            self._users.popitem(last=False)

    async def get(self, client: SlackClient, user: str) -> dict[str, Any] | None:
        """The user's object (cached), or None if Slack does not know them."""
        team = client.team_id
        entry = self.cached(team, user)
        if entry is not None:
            return entry
        try:
            data = await client.call("users.info", user=user)
        except Exception as e:  # noqa: BLE001 - a missing name is not fatal
            log.debug("users.info %s: %s", user, e)
            return None
        found = data.get("user")
        if isinstance(found, dict):
            self.update(team, found)
            return found
        return None

    async def name(self, client: SlackClient, user: str) -> str:
        entry = await self.get(client, user)
        return display_name(entry) if entry else user

    async def user_info(self, client: SlackClient, rid: RemoteUserID) -> UserInfo | None:
        parsed = parse_user_rid(rid)
        if parsed is None or parsed[0] != client.team_id:
            return None
        entry = await self.get(client, parsed[1])
        return user_info_of(entry) if entry else None
