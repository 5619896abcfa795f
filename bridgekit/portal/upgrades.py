"""Room upgrades: a portal follows its room's tombstone to the replacement room.

A tombstone redirects everything a portal bridges, so it is followed only when the room's
current state vouches for it: it is the tombstone now in the old room's state, its sender's
power level there (read from the homeserver, not from the event) allows ``m.room.tombstone``,
and the replacement room names the old one as its predecessor. Anything else is logged and
ignored. An invite-only replacement cannot be joined uninvited: the bot asks for an invite in
the old room and finishes the move when it is invited (remembered across restarts). A
replacement that gives the bot no power is still followed (messages need none); the room is
told which level to grant for the bridge info state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from mautrix.errors import IntentError, MatrixRequestError
from mautrix.types import EventType, RoomID

from ..contract.ids import server_of
from ..objects.portal import Portal

if TYPE_CHECKING:
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from .spaces import Spaces

log = logging.getLogger("bridgekit.portal.upgrades")

TOMBSTONE = "m.room.tombstone"
#: Room versions whose creators have unlimited power and are not listed in ``users``.
CREATORS_PRIVILEGED = {"12"}


def may_send_tombstone(
    sender: str, power_levels: dict[str, Any] | None, create: dict[str, Any]
) -> bool:
    """Whether the room's state lets ``sender`` send a tombstone (the spec's auth rules for
    one state event; ``create`` is the whole ``m.room.create`` event)."""
    content = create.get("content") if isinstance(create.get("content"), dict) else {}
    creator = create.get("sender")
    if str(content.get("room_version", "1")) in CREATORS_PRIVILEGED:
        extra = content.get("additional_creators")
        if sender == creator or (isinstance(extra, list) and sender in extra):
            return True
    if power_levels is None:  # no power levels event: the creator has 100, state needs 0
        return sender == creator
    users = power_levels.get("users")
    users = users if isinstance(users, dict) else {}
    events = power_levels.get("events")
    events = events if isinstance(events, dict) else {}
    try:
        level = int(users.get(sender, power_levels.get("users_default", 0)))
        needed = int(events.get(TOMBSTONE, power_levels.get("state_default", 50)))
    except (TypeError, ValueError):
        return False
    return level >= needed


class BridgeInfo(Protocol):
    """What an upgrade needs of :class:`~bridgekit.portal.rooms.Rooms` (a protocol: that
    module is wired with the services that use this one)."""

    async def set_bridge_info(self, portal: Portal) -> None: ...


class RoomUpgrades:
    def __init__(
        self,
        *,
        store: Store,
        matrix: MatrixClient,
        rooms: BridgeInfo,
        spaces: Spaces,
        send_notice: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.matrix = matrix
        self.rooms = rooms
        self.spaces = spaces
        self.send_notice = send_notice  # a notice from the bot in a room

    @staticmethod
    def _pending_key(room_id: str) -> str:
        return f"upgrade:{room_id}"

    async def follow(self, portal: Portal, evt: dict[str, Any]) -> None:
        """A tombstone arrived in ``portal``'s room: move the portal if the room's state
        says its sender may do that."""
        old = portal.mxid
        if not old:
            return
        current = await self._current_tombstone(old)
        if current is None or current.get("event_id") != evt.get("event_id"):
            log.warning(
                "Ignoring tombstone %s in %s from %s: not the room's current tombstone",
                evt.get("event_id"),
                old,
                evt.get("sender"),
            )
            return
        sender = str(current.get("sender"))
        content = current.get("content")
        replacement = content.get("replacement_room") if isinstance(content, dict) else None
        if not isinstance(replacement, str) or not replacement.startswith("!"):
            log.warning("Ignoring tombstone in %s: no replacement room", old)
            return
        if not await self._may_upgrade(old, sender):
            log.warning(
                "Ignoring tombstone in %s from %s: their power level there does not allow it",
                old,
                sender,
            )
            return
        bot = self.matrix.bot
        assert bot is not None
        try:
            await bot.join_room(RoomID(replacement), servers=[server_of(sender)], max_retries=0)
        except MatrixRequestError as e:
            log.info("Cannot join %s yet (%s): asking for an invite", replacement, e)
            await self.store.set_kv(self._pending_key(replacement), old)
            await self.send_notice(
                old,
                f"This room was upgraded. Invite me ({self.matrix.bot_mxid}) to the new room "
                "to keep it bridged.",
            )
            return
        await self._move(portal, old, replacement)

    async def joined(self, room_id: str) -> bool:
        """The bot just joined ``room_id`` after an invite: finish a move that waited for
        it. True if the room is an upgraded portal's replacement."""
        old = await self.store.get_kv(self._pending_key(room_id))
        if not old:
            return False
        await self.store.set_kv(self._pending_key(room_id), None)
        portal = await self.store.get_portal_by_mxid(old)
        if portal is None:
            return False
        await self._move(portal, old, room_id)
        return True

    async def _current_tombstone(self, room_id: str) -> dict[str, Any] | None:
        bot = self.matrix.bot
        assert bot is not None
        try:
            event = await bot.get_state_event(
                RoomID(room_id), EventType.ROOM_TOMBSTONE, format="event"
            )
        except MatrixRequestError:
            return None
        return event.serialize()

    async def _may_upgrade(self, room_id: str, sender: str) -> bool:
        bot = self.matrix.bot
        assert bot is not None
        create = (
            await bot.get_state_event(RoomID(room_id), EventType.ROOM_CREATE, format="event")
        ).serialize()
        try:
            levels = (
                await bot.get_state_event(RoomID(room_id), EventType.ROOM_POWER_LEVELS)
            ).serialize()
        except MatrixRequestError as e:
            if e.http_status != 404:
                raise
            levels = None
        return may_send_tombstone(sender, levels, create)

    async def _move(self, portal: Portal, old: str, new: str) -> None:
        """The bot is in ``new``: check it succeeds ``old``, then bridge it instead."""
        bot = self.matrix.bot
        assert bot is not None
        create = (await bot.get_state_event(RoomID(new), EventType.ROOM_CREATE)).serialize()
        predecessor = create.get("predecessor")
        if not isinstance(predecessor, dict) or predecessor.get("room_id") != old:
            log.warning("Not moving %s to %s: it does not succeed that room", portal.key, new)
            await bot.leave_room(RoomID(new), reason="Not the replacement of a bridged room")
            return
        if portal.mxid != old:
            return  # moved already (a replayed tombstone)
        portal.mxid = new
        await portal.save()
        await self.spaces.portal_moved(portal, old)
        log.info("Portal %s/%s moved from %s to %s", portal.network, portal.key, old, new)
        try:
            await self.rooms.set_bridge_info(portal)
        except (MatrixRequestError, IntentError) as e:
            # mautrix checks the bot's power itself (IntentError) before asking the server.
            log.warning("Could not set the bridge info of %s (%s)", new, e)
            await self.send_notice(new, await self._power_hint(new))

    async def _power_hint(self, room_id: str) -> str:
        """What the bot needs granted in ``room_id`` to mark it bridged, in words an admin
        can act on (the level the room's power levels ask for the bridge info state)."""
        bot = self.matrix.bot
        assert bot is not None
        needed = 50
        try:
            levels = (
                await bot.get_state_event(RoomID(room_id), EventType.ROOM_POWER_LEVELS)
            ).serialize()
            events = levels.get("events") if isinstance(levels.get("events"), dict) else {}
            default = levels.get("state_default", 50)
            needed = max(int(events.get(t, default)) for t in ("m.bridge", "uk.half-shot.bridge"))
        except (MatrixRequestError, TypeError, ValueError):
            pass
        me = self.matrix.bot_mxid
        return (
            "This room was upgraded and I bridge it now, but I need power in the new room to "
            f"mark it as bridged (the m.bridge state): give me ({me}) power level {needed}, "
            f"e.g. send `/op {me} {needed}` here."
        )
