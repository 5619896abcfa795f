"""Whether a Matrix user may notify a whole room (``@room``), for connectors that must not
let anyone else produce a network's everyone-mention (Slack's ``<!channel>``, Discord's
``@everyone``).

The Matrix rule: ``m.room.power_levels`` ``notifications.room`` (default 50) against the
sender's level; in room versions with creator power (v12) the creators always may. The power
levels come from the Matrix client's state store (the router keeps it current with every
``m.room.power_levels`` event; a room it has not seen yet costs one request); the create event
never changes, so it is asked once per room and kept.

Only a message that could mention the room at all is asked about: one with an ``@`` (or an
HTML character reference that may hide one) in its text, or ``m.mentions.room``. The others,
nearly all, cost nothing. A room whose state cannot be read (the homeserver down) is not
asked again for :data:`FAILURE_HOLD` seconds: an outage must not cost a failing request and a
warning per message.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from mautrix.types import EventType, RoomID, UserID

from ..database.records import LRU

if TYPE_CHECKING:
    from ..matrix.client import MatrixClient

log = logging.getLogger("bridgekit.portal.room_power")

#: Rooms whose create event is kept.
CREATE_EVENTS = 10_000
#: Seconds a room whose power levels could not be read is answered "no" without asking.
FAILURE_HOLD = 30.0


def could_mention_room(content: dict[str, Any]) -> bool:
    """Whether a message's content could carry a room mention (cheap string checks)."""
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict) and mentions.get("room") is True:
        return True
    body = content.get("body")
    html = content.get("formatted_body")
    return (isinstance(body, str) and "@" in body) or (
        isinstance(html, str) and ("@" in html or "&#" in html)
    )


class RoomPower:
    def __init__(self, matrix: MatrixClient) -> None:
        self.matrix = matrix
        self._create: LRU = LRU(CREATE_EVENTS)
        self._failed: LRU = LRU(CREATE_EVENTS)  # room -> monotonic time of its last failure

    async def _create_event(self, room_id: str) -> Any:
        if room_id in self._create:
            return self._create[room_id]
        bot = self.matrix.bot
        assert bot is not None
        event = await bot.get_state_event(RoomID(room_id), EventType.ROOM_CREATE, format="event")
        self._create.put(room_id, event)
        return event

    async def may_mention_room(
        self, room_id: str, mxid: str, content: dict[str, Any] | None = None
    ) -> bool:
        """True if ``mxid``'s power level in ``room_id`` reaches ``notifications.room``.
        False, without asking, when ``content`` (the message) cannot mention the room; False
        when the room's state cannot be read (refusing is the safe answer)."""
        if content is not None and not could_mention_room(content):
            return False
        failed_at = self._failed.get(room_id)
        if failed_at is not None and time.monotonic() - failed_at < FAILURE_HOLD:
            return False
        bot = self.matrix.bot
        assert bot is not None
        try:
            levels = await bot.get_power_levels(RoomID(room_id), ensure_joined=False)
            create = await self._create_event(room_id)
            level = levels.get_user_level(UserID(mxid), create)
        except Exception as e:  # noqa: BLE001 - unreadable state: no room mention
            self._failed.put(room_id, time.monotonic())
            log.warning(
                "Power levels of %s unreadable (%s): no room mention for %s (not asked again "
                "for %.0f s)",
                room_id,
                e,
                mxid,
                FAILURE_HOLD,
            )
            return False
        needed = getattr(levels.notifications, "room", 50)
        return level >= (needed if isinstance(needed, int) else 50)
