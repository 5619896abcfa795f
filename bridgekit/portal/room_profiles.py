"""A ghost's name and avatar in one room (a Discord guild nickname and guild avatar).

A network where one person has a different name per community reports it on the sender
(:attr:`~bridgekit.contract.events.EventSender.room_name` / ``room_avatar_url``); the ghost's
global profile stays its account's, and its member event in that portal's room carries the
per-room one (Matrix per-room profiles). A change costs one state event; an unchanged report
costs a dictionary lookup (the first in a room after a start also reads the member event,
so a restart does not send them all again).

A global profile change makes the homeserver rewrite the ghost's member events in every room
(Synapse does), so the ghost's per-room profiles are forgotten then and applied again at its
next message.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from mautrix.appservice import IntentAPI
from mautrix.types import EventType, Membership, MemberStateEventContent

from ..matrix.client import with_retries

log = logging.getLogger("bridgekit.portal.room_profiles")

#: (room, ghost) pairs remembered; the least recently used are forgotten beyond.
MAX_ENTRIES = 50_000


class RoomProfiles:
    def __init__(self, avatar_mxc: Callable[[str], Awaitable[str]]) -> None:
        self.avatar_mxc = avatar_mxc
        self._applied: OrderedDict[tuple[str, str], tuple[str | None, str | None]] = OrderedDict()

    def forget(self, mxid: str) -> None:
        """The ghost's global profile changed: its per-room ones must be applied again."""
        for key in [k for k in self._applied if k[1] == mxid]:
            del self._applied[key]

    async def apply(
        self, intent: IntentAPI, room_id: str, name: str | None, avatar_url: str | None
    ) -> None:
        """Make the ghost's member event in ``room_id`` show ``name`` / ``avatar_url`` (an
        http(s) URL or ``mxc://``; None: the global one)."""
        key = (room_id, intent.mxid)
        want = (name, avatar_url)
        applied = self._applied.get(key)
        if applied == want or (applied is None and want == (None, None)):
            if applied is not None:
                self._applied.move_to_end(key)
            return  # as wanted, or never set apart from the global profile
        try:
            await self._set(intent, room_id, name, avatar_url)
        except Exception as e:  # noqa: BLE001 - the message goes on with the global profile
            log.warning("Could not set %s's profile in %s: %s", intent.mxid, room_id, e)
            return
        self._applied[key] = want
        if len(self._applied) > MAX_ENTRIES:
            self._applied.popitem(last=False)

    async def _set(
        self, intent: IntentAPI, room_id: str, name: str | None, avatar_url: str | None
    ) -> None:
        current: dict[str, Any] = {}
        try:
            event = await intent.get_state_event(room_id, EventType.ROOM_MEMBER, intent.mxid)
            current = event.serialize() if hasattr(event, "serialize") else dict(event)
        except Exception:  # noqa: BLE001 - no member event readable: write a full one
            current = {}
        content = {k: v for k, v in current.items() if k in ("displayname", "avatar_url")}
        content["membership"] = "join"
        if name is None or avatar_url is None:
            profile = await intent.get_profile(intent.mxid)
            if name is None and profile.displayname:
                name = profile.displayname
            if avatar_url is None and profile.avatar_url:
                avatar_url = str(profile.avatar_url)
        if name:
            content["displayname"] = name
        if avatar_url:
            content["avatar_url"] = await self.avatar_mxc(avatar_url)
        if all(current.get(k) == content.get(k) for k in ("displayname", "avatar_url")):
            return
        member = MemberStateEventContent(
            membership=Membership.JOIN,
            displayname=content.get("displayname"),
            avatar_url=content.get("avatar_url"),
        )
        await with_retries(
            lambda: intent.send_state_event(
                room_id, EventType.ROOM_MEMBER, member, state_key=intent.mxid
            ),
            what=f"{intent.mxid}'s profile in {room_id}",
        )
