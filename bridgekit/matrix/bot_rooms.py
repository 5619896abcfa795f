"""The rooms the bridge bot is joined to, in memory: where an encrypted event is worth
decrypting.

An encrypted event shows nothing of what it is (a command? chatter?) until it is decrypted,
and the bot's device holds the room keys of the rooms the bot is in, and only those. So the
router decrypts encrypted events in those rooms (commands, e.g. ``bridge <network> <id>`` to
plumb an encrypted room, are then seen like their plaintext twins) and nowhere else (a room
with only ghosts in it: no key would ever come, and nobody asked the bridge for anything).

The set is read once at start (``GET /joined_rooms`` as the bot: the homeserver's word) and
then follows the bot's membership events *as transactions are dispatched*, not as they are
handled: a transaction may carry the bot's join and, behind it, the first encrypted command,
and the router decides about both before handling either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

MEMBER = "m.room.member"


class BotRooms:
    """The bot's joined rooms (see the module docstring)."""

    def __init__(self, bot_mxid: str) -> None:
        self.bot_mxid = bot_mxid
        self._joined: set[str] = set()

    async def load(self, joined_rooms: Callable[[], Awaitable[list[str]]]) -> None:
        """Start from the homeserver's list (membership events seen since stay applied: they
        are newer)."""
        self._joined.update(r for r in await joined_rooms() if isinstance(r, str))

    def see(self, evt: dict[str, Any]) -> None:
        """Follow one event of a transaction (only the bot's own membership changes it)."""
        if evt.get("type") != MEMBER or evt.get("state_key") != self.bot_mxid:
            return
        content = evt.get("content")
        membership = content.get("membership") if isinstance(content, dict) else None
        room_id = evt.get("room_id")
        if not isinstance(room_id, str):
            return
        if membership == "join":
            self._joined.add(room_id)
        elif membership in ("leave", "ban"):
            self._joined.discard(room_id)

    def joined(self, room_id: str) -> None:
        """The bot has just joined (its join event comes later, in a transaction)."""
        self._joined.add(room_id)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._joined

    def __len__(self) -> int:
        return len(self._joined)
