"""Whether a Matrix user may notify a whole room (``@room``), for connectors that must not
let anyone else produce a network's everyone-mention (Slack's ``<!channel>``, Discord's
``@everyone``).

The Matrix rule: ``m.room.power_levels`` ``notifications.room`` (default 50) against the
sender's level; in room versions with creator power (v12) the creators always may. The power
levels come from the Matrix client's state store (the router keeps it current with every
``m.room.power_levels`` event; a room it has not seen yet costs one request); the create event
never changes, so it is asked once per room and kept.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mautrix.types import EventType, RoomID, UserID

from ..database.records import LRU

if TYPE_CHECKING:
    from ..matrix.client import MatrixClient

log = logging.getLogger("bridgekit.portal.room_power")

#: Rooms whose create event is kept.
CREATE_EVENTS = 10_000


class RoomPower:
    def __init__(self, matrix: MatrixClient) -> None:
        self.matrix = matrix
        self._create: LRU = LRU(CREATE_EVENTS)

    async def _create_event(self, room_id: str) -> Any:
        if room_id in self._create:
            return self._create[room_id]
        bot = self.matrix.bot
        assert bot is not None
        event = await bot.get_state_event(RoomID(room_id), EventType.ROOM_CREATE, format="event")
        self._create.put(room_id, event)
        return event

    async def may_mention_room(self, room_id: str, mxid: str) -> bool:
        """True if ``mxid``'s power level in ``room_id`` reaches ``notifications.room``.
        False when the room's state cannot be read (refusing is the safe answer)."""
        bot = self.matrix.bot
        assert bot is not None
        try:
            levels = await bot.get_power_levels(RoomID(room_id), ensure_joined=False)
            create = await self._create_event(room_id)
            level = levels.get_user_level(UserID(mxid), create)
        except Exception as e:  # noqa: BLE001 - unreadable state: no room mention
            log.warning(
                "Power levels of %s unreadable (%s): no room mention for %s", room_id, e, mxid
            )
            return False
        needed = getattr(levels.notifications, "room", 50)
        return level >= (needed if isinstance(needed, int) else 50)
