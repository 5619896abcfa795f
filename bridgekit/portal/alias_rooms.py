"""Portal rooms made on demand, when someone joins an alias in a connector's namespace.

The homeserver asks the bridge about an alias it does not know before anyone is in a room,
and it does not say who is asking: the bridge cannot tell a permitted user from a stranger at
that moment. So creation is bounded instead:

- only for a chat id the connector accepts (its own ``resolve_alias``, then its
  :class:`~bridgekit.contract.connector.ChatIdParser`, as for ``bridge <network> <id>``);
- at most ``bridge.alias_rooms.per_minute`` new rooms a minute per network (a burst of as
  many), so a loop over made-up names cannot fill the homeserver with rooms;
- a room nobody joined within ``bridge.alias_rooms.cleanup_after`` seconds is closed, its alias
  removed, the bot and ghosts leave, and the portal is forgotten (the marker lives in the
  portal's metadata, so a restart does not forget it).

Refused queries are logged (at most once a minute per alias), so an operator can see why an
alias does not work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from mautrix.errors import MatrixRequestError
from mautrix.types import Membership

from ..contract.connector import AliasResolver, ChatIdParser, NetworkConnector
from ..contract.events import PortalKey
from ..contract.ids import server_of
from ..matrix.client import state_type
from ..objects.portal import Portal

if TYPE_CHECKING:
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from ..settings import AliasRoomSettings
    from .spaces import Spaces

log = logging.getLogger("bridgekit.portal.portals")

MARKER = "alias_room"  # portal.metadata key: {"at": creation time, "aliases": [localpart]}
_LOG_EVERY = 60.0
_LOG_LINES = 30  # refused queries logged a minute, at most


class PortalRooms(Protocol):
    """What alias rooms need of :class:`~bridgekit.portal.rooms.Rooms` (a protocol: that
    module is wired with the services that use this one)."""

    async def get_or_create(
        self,
        network: str,
        key: PortalKey,
        login_id: str | None,
        *,
        alias_localpart: str | None = None,
        by_alias: bool = False,
    ) -> Portal | None: ...

    async def add_alias(self, portal: Portal, localpart: str) -> bool: ...


class AliasRooms:
    def __init__(
        self,
        *,
        settings: AliasRoomSettings,
        store: Store,
        matrix: MatrixClient,
        connectors: Mapping[str, NetworkConnector],
        rooms: PortalRooms,
        spaces: Spaces,
        connector_for_ghost: Callable[[str], object | None],
    ) -> None:
        self.store = store
        self.matrix = matrix
        self.connectors = connectors  # the live map of enabled connectors
        self.rooms = rooms
        self.spaces = spaces
        self.connector_for_ghost = connector_for_ghost  # None for an MXID that is no ghost
        self.per_minute = settings.per_minute
        self.cleanup_after = settings.cleanup_after
        self._buckets: dict[str, tuple[float, float]] = {}  # network -> (tokens, when)
        self._logged: dict[str, float] = {}
        self._window: list[float] = [time.monotonic(), 0, 0]  # start, lines, left out
        self._due: dict[tuple[str, PortalKey], float] = {}  # rooms to check, and when
        self._wake = asyncio.Event()

    # -- the query -----------------------------------------------------------------------------

    async def query(self, alias: str) -> bool:
        """Answer the homeserver's ``GET /rooms/{alias}``: True once the room exists."""
        if server_of(alias) != self.matrix.domain:
            return False
        localpart = alias[1:].split(":", 1)[0]
        for connector in self.connectors.values():
            if not isinstance(connector, AliasResolver):
                continue
            resolved = await connector.resolve_alias(localpart)
            if resolved is None:
                continue
            key, login_id = resolved
            if isinstance(connector, ChatIdParser) and not key.receiver:
                try:
                    accepted = connector.parse_chat_id(key.id)
                except ValueError as e:
                    self._refused(alias, f"{connector.name} does not accept {key.id!r}: {e}")
                    return False
                if accepted.id != key.id:
                    self._refused(alias, f"{key.id!r} is not {connector.name}'s own spelling")
                    return False
            existing = await self.store.get_portal(connector.name, key)
            if existing is not None and existing.mxid:
                # A room made before anyone asked for its alias (by a command, an invite, or
                # the other spelling of the alias): the homeserver asks us because the alias
                # is not there yet, so add it. Within the same rate as new rooms: a
                # connector that reads many spellings as one chat must not let a stranger
                # pile aliases onto a room.
                if not self._take(connector.name):
                    self._refused(
                        alias,
                        f"more than {self.per_minute:g} rooms or aliases a minute made from "
                        f"{connector.name} aliases (bridge.alias_rooms.per_minute)",
                        level=logging.WARNING,
                        key=f"rate:{connector.name}",
                    )
                    return False
                added = await self.rooms.add_alias(existing, localpart)
                mark = existing.metadata.get(MARKER)
                if added and isinstance(mark, dict):  # removed with the room if unjoined
                    mark.setdefault("aliases", []).append(localpart)
                    await existing.save()
                return added
            if not self._take(connector.name):
                self._refused(
                    alias,
                    f"more than {self.per_minute:g} rooms a minute made from {connector.name} "
                    "aliases (bridge.alias_rooms.per_minute)",
                    level=logging.WARNING,
                    key=f"rate:{connector.name}",
                )
                return False
            portal = await self.rooms.get_or_create(
                connector.name, key, login_id, alias_localpart=localpart, by_alias=True
            )
            if portal is None or portal.mxid is None:
                return False
            if self.cleanup_after > 0:
                portal.metadata[MARKER] = {"at": time.time(), "aliases": [localpart]}
                await portal.save()
                self._due[(portal.network, portal.key)] = time.time() + self.cleanup_after
                self._wake.set()
            return True
        self._refused(
            alias,
            "no connector knows this chat; aliases name chats in the connector's escaped form "
            "(README: portal rooms from aliases)",
        )
        return False

    def _take(self, network: str) -> bool:
        """A token bucket per network: ``per_minute`` tokens, refilled evenly."""
        if self.per_minute <= 0:
            return True
        now = time.monotonic()
        tokens, when = self._buckets.get(network, (self.per_minute, now))
        tokens = min(self.per_minute, tokens + (now - when) * self.per_minute / 60)
        if tokens < 1:
            self._buckets[network] = (tokens, now)
            return False
        self._buckets[network] = (tokens - 1, now)
        return True

    def _refused(
        self, alias: str, why: str, level: int = logging.INFO, key: str | None = None
    ) -> None:
        """Log a refused alias query: once a minute per ``key`` (the alias by default), and
        at most ``_LOG_LINES`` lines a minute in all (a stranger's loop over made-up names
        must not flood the log; what was left out is counted)."""
        now = time.monotonic()
        key = key or alias
        if now - self._window[0] >= _LOG_EVERY:
            if self._window[2]:
                log.info("%d more alias queries refused in the last minute", self._window[2])
            self._window = [now, 0, 0]
            self._logged = {k: t for k, t in self._logged.items() if now - t < _LOG_EVERY}
        if now - self._logged.get(key, -_LOG_EVERY) < _LOG_EVERY:
            return
        if self._window[1] >= _LOG_LINES:
            self._window[2] += 1
            return
        self._window[1] += 1
        self._logged[key] = now
        log.log(level, "Alias %s refused (404): %s", alias, why)

    # -- cleanup -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Close rooms made from an alias that nobody joined in time (a background task)."""
        if self.cleanup_after <= 0:
            return
        for portal in await self.store.all_portals():  # marked before a restart
            mark = portal.metadata.get(MARKER)
            if isinstance(mark, dict):
                due = float(mark.get("at", 0)) + self.cleanup_after
                self._due[(portal.network, portal.key)] = due
        while True:
            self._wake.clear()
            now = time.time()
            for ident, due in list(self._due.items()):
                if due > now:
                    continue
                del self._due[ident]
                portal = await self.store.get_portal(*ident)
                mark = portal.metadata.get(MARKER) if portal else None
                if portal is None or not portal.mxid or not isinstance(mark, dict):
                    continue
                try:
                    await self._check(portal, [str(a) for a in mark.get("aliases", [])])
                except Exception:
                    log.exception("Could not check the alias room %s", portal.mxid)
                    self._due[ident] = time.time() + 60  # the homeserver may be back then
            wait = min(self._due.values(), default=now + 3600) - time.time()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.05, wait))
            except TimeoutError:
                pass

    async def _check(self, portal: Portal, aliases: list[str]) -> None:
        bot = self.matrix.bot
        assert bot is not None and portal.mxid
        events = await bot.get_members(portal.mxid)
        # Joined or invited (``irc join`` may have invited someone who has not answered yet).
        present = {
            str(e.state_key): e.content.membership
            for e in events
            if e.content.membership in (Membership.JOIN, Membership.INVITE)
        }
        people = [
            m for m in present if m != self.matrix.bot_mxid and self.connector_for_ghost(m) is None
        ]
        members = [m for m, ms in present.items() if ms == Membership.JOIN]
        if people:
            portal.metadata.pop(MARKER, None)
            await portal.save()
            return
        log.info(
            "Closing %s (%s/%s): made from alias %s, nobody joined in %gs",
            portal.mxid,
            portal.network,
            portal.key,
            ", ".join(aliases),
            self.cleanup_after,
        )
        await self.spaces.portal_removed(portal)
        await portal.delete()
        try:
            await bot.send_state_event(
                portal.mxid, state_type("m.room.join_rules"), {"join_rule": "invite"}
            )
            for localpart in aliases:
                await bot.remove_room_alias(localpart)
            for member in members:
                if member != self.matrix.bot_mxid:
                    await self.matrix.intent(member).leave_room(portal.mxid)
            await bot.leave_room(portal.mxid)
        except MatrixRequestError as e:
            log.warning("Could not fully clean up %s: %s", portal.mxid, e)
