"""Slack users as the bridge knows them: a cache in front of ``users.info``.

Names and avatars are asked once per user and kept; ``user_change`` events replace them
(:meth:`UserDirectory.update`). The cache is bounded, and keeps of each user only the fields
the bridge reads (:func:`slim`): Slack's user object carries dozens more (every image size,
status, phone, title, custom fields, time zone...), about 6 KiB of Python objects per user
(bench/slack.py: 10,000 users would have cost some 60 MiB).
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

#: The user object's fields the bridge reads (names, avatar, kind), top level and profile.
KEPT = ("id", "team_id", "name", "real_name", "deleted", "is_bot", "is_app_user")
KEPT_PROFILE = (
    "display_name",
    "real_name",
    "image_512",
    "image_192",
    "image_72",
    "image_original",
    "bot_id",
)


def slim(user: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``user`` with only :data:`KEPT` and :data:`KEPT_PROFILE` (same shape)."""
    out = {key: user[key] for key in KEPT if key in user}
    profile = user.get("profile")
    if isinstance(profile, dict):
        out["profile"] = {key: profile[key] for key in KEPT_PROFILE if key in profile}
    return out


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
        self._users[(team, uid)] = slim(user)
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
            return self.cached(team, user)
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
