"""Spaces: one Matrix space room per remote container, with the container's portals as children.

A connector names a chat's container in :attr:`ChatInfo.parent <bridgekit.contract.events.ChatInfo>`
(an IRC network, a Slack workspace, a Discord guild). The runtime then

* makes one space room per (network, container id, receiver) -- ``creation_content.type`` is
  ``m.space``, joinable by invite -- with the name, topic and avatar the connector gives;
* links each portal both ways (``m.space.child`` in the space with ``via``, and a canonical
  ``m.space.parent`` in the portal), and unlinks it when the portal is deleted or unbridged;
* invites the Matrix user of each login that has a portal in the space (once per user).

With ``bridge.personal_spaces``, each login also gets a space of its own (bridgev2's personal
filtering space) listing the portals it created or resynced: its DMs and the chats it is in, so a
client can show one network account's chats apart. It is stored as the container ``""`` with the
login as receiver (a connector's container never has an empty id), and sets no
``m.space.parent`` in the portal (the container's space is the canonical one).

Portals are created in parallel, so two portals of a new container may ask for its space at
the same moment: the space is made under a lock per container, and its row is read again
inside the lock. What is asked for is written to the database first (``space``,
``space_child``) and the Matrix side done after, in the background (a portal's first message
does not wait for its space); a link cut short by a stop is finished at the next start, and a
restart never makes a second space for a container (the row keeps its room).

The SQL lives here rather than in ``database/store.py``: these tables are read by nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from mautrix.errors import IntentError, MatrixRequestError
from mautrix.types import RoomID, UserID

from ..contract.connector import LoginInfo, NetworkConnector
from ..contract.events import PortalKey, SpaceInfo
from ..database.spaces import SpaceKey, SpaceRow, SpaceTable
from ..matrix.client import state_type, with_retries
from ..objects.portal import Portal

if TYPE_CHECKING:
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from .puppets import Puppets

log = logging.getLogger("bridgekit.portal.spaces")

#: Longest container id and name kept (a connector's untrusted data ends up in room state).
MAX_ID = 255
MAX_TEXT = 1000


def _clean(info: SpaceInfo) -> SpaceInfo | None:
    """``info`` with over-long text cut, or None if it names no container."""
    if not isinstance(info, SpaceInfo) or not isinstance(info.id, str) or not info.id:
        return None
    if len(info.id) > MAX_ID or not isinstance(info.receiver, str):
        log.warning("Ignoring a space with an unusable id %.40r", info.id)
        return None

    def text(value: Any) -> str | None:
        return value[:MAX_TEXT] if isinstance(value, str) and value else None

    return SpaceInfo(
        info.id, text(info.name), text(info.topic), text(info.avatar_url), info.receiver
    )


class Spaces:
    """The space rooms of every network served by this process."""

    def __init__(
        self,
        *,
        store: Store,
        matrix: MatrixClient,
        puppets: Puppets,
        connectors: Mapping[str, NetworkConnector],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        personal: bool,
    ) -> None:
        self.store = store
        self.matrix = matrix
        self.puppets = puppets  # avatars copied to the homeserver, double puppets
        self.connectors = connectors  # the live map of enabled connectors
        self._spawn = spawn  # a background task the bridge cancels at stop
        self._locks: dict[SpaceKey, asyncio.Lock] = {}
        self.personal = personal  # bridge.personal_spaces

    @property
    def _rows(self) -> SpaceTable:
        return self.store.spaces

    # -- what the runtime calls ----------------------------------------------------------------

    async def place(
        self, portal: Portal, parent: SpaceInfo | None, login: LoginInfo | None
    ) -> None:
        """Record that ``portal`` belongs to the container ``parent`` (and, with personal
        spaces, to ``login``'s space) and link it in the background; the Matrix user of
        ``login``, the login that reported it, is invited. A plumbed room is left alone (its
        admins own its state)."""
        if portal.plumbed or not portal.mxid:
            return
        user_mxid = login.user_mxid if login else None
        info = _clean(parent) if parent is not None else None
        if info is not None:
            await self._place(portal, info, user_mxid)
        if self.personal and login is not None and login.network == portal.network:
            display = getattr(self.connectors.get(portal.network), "display_name", "")
            name = f"{display or portal.network} ({login.remote_name or login.remote_id})"
            await self._place(portal, SpaceInfo("", name=name, receiver=login.id), user_mxid)

    async def _place(self, portal: Portal, info: SpaceInfo, user_mxid: str | None) -> None:
        key: SpaceKey = (portal.network, info.id, info.receiver)
        await self._rows.add_space(key, info.name, info.topic, info.avatar_url)
        old = await self._child(portal.network, portal.key) if info.id else None
        if old is not None and (old[0], old[1]) != (info.id, info.receiver):
            await self._forget_child(portal, (portal.network, old[0], old[1]))
        await self._rows.add_child(portal, info.id, info.receiver)
        if user_mxid:
            await self._rows.add_member(key, user_mxid)
        moved = old is not None and old[2] and (old[0], old[1]) != (info.id, info.receiver)
        old_key = (portal.network, old[0], old[1]) if old and moved else None
        self._spawn(self._link(portal.network, portal.key, info, old_key))

    async def _forget_child(self, portal: Portal, space: SpaceKey) -> None:
        await self._rows.forget_child(portal, space)

    async def _children(self, network: str, key: PortalKey) -> list[tuple[str, str, bool]]:
        """Every space row of the portal: its container's and its logins' personal ones."""
        return await self._rows.children(network, key)

    async def portal_removed(self, portal: Portal) -> None:
        """Unlink a portal that is being deleted or unbridged from its spaces."""
        try:
            for space_id, receiver, linked in await self._children(portal.network, portal.key):
                space_key = (portal.network, space_id, receiver)
                await self._forget_child(portal, space_key)
                space = await self._space(space_key)
                if linked and space and space.mxid and portal.mxid:
                    await self._unlink(space.mxid, portal, parent=bool(space_id))
        except Exception:
            log.exception("Could not remove %s/%s from its space", portal.network, portal.key)

    async def portal_moved(self, portal: Portal, old_mxid: str) -> None:
        """The portal's room was upgraded to ``portal.mxid``: its spaces list the new room
        instead of the old one."""
        try:
            for space_id, receiver, linked in await self._children(portal.network, portal.key):
                space = await self._space((portal.network, space_id, receiver))
                if linked and space and space.mxid:
                    await self._state(space.mxid, "m.space.child", old_mxid, {})
                await self._rows.set_linked(portal.network, portal.key, space_id, receiver, False)
                info = SpaceInfo(space_id, receiver=receiver)
                link = self._link(portal.network, portal.key, info, None, stored=True)
                self._spawn(link)
        except Exception:
            log.exception("Could not move %s/%s in its space", portal.network, portal.key)

    async def resume(self) -> None:
        """Finish the links and invites a stop cut short (run once at start)."""
        rows = await self._rows.unlinked_children()
        for r in rows:
            if r["network"] not in self.connectors:
                continue
            key = PortalKey(r["portal_id"], r["receiver"])
            info = SpaceInfo(r["space_id"], receiver=r["space_receiver"])
            self._spawn(self._link(r["network"], key, info, None, stored=True))
        rows = await self._rows.spaces_with_uninvited()
        for r in rows:
            space_key = (r["network"], r["space_id"], r["receiver"])
            self._spawn(self._invite_pending(space_key, r["mxid"]))

    async def space_of(self, network: str, key: PortalKey, login_id: str = "") -> str | None:
        """The room id of the space ``key``'s portal is linked into, if any: its container's,
        or with ``login_id`` that login's personal space."""
        space_key = (network, "", login_id) if login_id else None
        for space_id, receiver, linked in await self._children(network, key):
            if linked and (
                space_key is None and space_id or space_key == (network, space_id, receiver)
            ):
                space = await self._space((network, space_id, receiver))
                return space.mxid if space else None
        return None

    # -- rows ----------------------------------------------------------------------------------

    async def _child(self, network: str, key: PortalKey) -> tuple[str, str, bool] | None:
        """The portal's container row (not a personal space's)."""
        return next(((i, r, ok) for i, r, ok in await self._children(network, key) if i), None)

    async def _space(self, key: SpaceKey) -> SpaceRow | None:
        return await self._rows.get_space(key)

    # -- the Matrix side -----------------------------------------------------------------------

    async def _link(
        self,
        network: str,
        key: PortalKey,
        info: SpaceInfo,
        old: SpaceKey | None,
        *,
        stored: bool = False,
    ) -> None:
        try:
            portal = await self.store.get_portal(network, key)
            if portal is None or not portal.mxid:
                return
            space_key: SpaceKey = (network, info.id, info.receiver)
            space_mxid = await self._ensure_space(space_key, None if stored else info)
            if space_mxid is None:
                return
            if old is not None and old != space_key:
                previous = await self._space(old)
                if previous and previous.mxid:
                    await self._unlink(previous.mxid, portal)
            if (info.id, info.receiver, False) not in await self._children(network, key):
                pass  # moved again or removed meanwhile: linked by that call, or not at all
            else:
                via = {"via": [self.matrix.domain]}
                await self._state(space_mxid, "m.space.child", portal.mxid, via)
                parent = {**via, "canonical": True}
                try:
                    if info.id:  # a container's space, not a login's
                        await self._state(portal.mxid, "m.space.parent", space_mxid, parent)
                except (MatrixRequestError, IntentError) as e:  # an upgraded room may not
                    # give the bot power there (its old power as creator is not copied)
                    log.warning("Could not name the space of %s in it: %s", portal.mxid, e)
                await self._rows.set_linked(network, key, info.id, info.receiver, True)
                log.info("Portal %s (%s/%s) is in space %s", portal.mxid, network, key, space_mxid)
            await self._invite_pending(space_key, space_mxid)
        except Exception:
            log.exception("Could not add %s/%s to its space", network, key)

    async def _ensure_space(self, key: SpaceKey, info: SpaceInfo | None) -> str | None:
        """The space room for ``key``, created once (under its lock); its name, topic and
        avatar follow ``info`` when it differs from what the room shows."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            row = await self._space(key)
            if row is None:  # removed meanwhile
                return None
            if row.mxid is None:
                row.mxid = await self._create(row)
                await self._rows.set_mxid(key, row.mxid)
            elif info is not None:
                await self._update(row, info)
            return row.mxid

    async def _create(self, row: SpaceRow) -> str:
        bot = self.matrix.bot
        assert bot is not None
        connector = self.connectors.get(row.network)
        display = getattr(connector, "display_name", row.network)
        bridge_info = {
            "bridgebot": self.matrix.bot_mxid,
            "creator": self.matrix.bot_mxid,
            "protocol": {"id": row.network, "displayname": display},
            "network": {"id": row.space_id, "displayname": row.name or row.space_id},
        }
        state_key = f"net.bridgekit://{row.network}/{row.space_id or row.receiver}"
        initial_state: list[dict[str, Any]] = [
            {"type": t, "state_key": state_key, "content": bridge_info}
            for t in ("m.bridge", "uk.half-shot.bridge")
        ]
        if row.avatar_url:
            try:
                mxc = await self.puppets.avatar_mxc(row.avatar_url)
                initial_state.append(
                    {"type": "m.room.avatar", "state_key": "", "content": {"url": mxc}}
                )
            except Exception as e:
                log.warning("Could not copy the avatar of space %s: %s", row.space_id, e)
        room_id = await with_retries(
            lambda: bot.create_room(
                name=row.name or row.space_id,
                topic=row.topic,
                creation_content={"type": "m.space"},
                initial_state=initial_state,
            ),
            what=f"creating the space for {row.network}/{row.space_id}",
        )
        log.info("Created space %s for %s/%s", room_id, row.network, row.space_id)
        return str(room_id)

    async def _update(self, row: SpaceRow, info: SpaceInfo) -> None:
        assert row.mxid is not None
        changes: dict[str, str | None] = {}
        if info.name and info.name != row.name:
            await self._state(row.mxid, "m.room.name", "", {"name": info.name})
            changes["name"] = info.name
        if info.topic is not None and info.topic != row.topic:
            await self._state(row.mxid, "m.room.topic", "", {"topic": info.topic})
            changes["topic"] = info.topic
        if info.avatar_url and info.avatar_url != row.avatar_url:
            try:
                mxc = await self.puppets.avatar_mxc(info.avatar_url)
            except Exception as e:
                log.info("Avatar of space %s not copied: %s", row.space_id, e)
            else:
                await self._state(row.mxid, "m.room.avatar", "", {"url": mxc})
                changes["avatar_url"] = info.avatar_url
        for column, value in changes.items():  # column names from the fixed set above
            await self._rows.set_column(row.key, column, value)

    async def _invite_pending(self, key: SpaceKey, space_mxid: str) -> None:
        """Invite the users with a portal in the space who were not invited yet."""
        users = await self._rows.uninvited(key)
        bot = self.matrix.bot
        assert bot is not None
        for user_mxid in users:
            try:
                await bot.invite_user(RoomID(space_mxid), UserID(user_mxid))
            except MatrixRequestError as e:  # already in the space: fine
                log.info("Could not invite %s to space %s: %s", user_mxid, space_mxid, e)
            dp = await self.puppets.double_puppet_intent(user_mxid)
            if dp is not None:
                try:
                    await dp.join_room(RoomID(space_mxid))
                except Exception as e:
                    log.warning("Double puppet could not join space %s: %s", space_mxid, e)
            await self._rows.mark_invited(key, user_mxid)

    async def _unlink(self, space_mxid: str, portal: Portal, *, parent: bool = True) -> None:
        assert portal.mxid is not None
        await self._state(space_mxid, "m.space.child", portal.mxid, {})
        if parent and not portal.plumbed:
            try:
                await self._state(portal.mxid, "m.space.parent", space_mxid, {})
            except MatrixRequestError as e:  # the room may be closing already
                log.info("Could not clear the space parent of %s: %s", portal.mxid, e)

    async def _state(self, room_id: str, etype: str, state_key: str, content: Any) -> None:
        bot = self.matrix.bot
        assert bot is not None
        await with_retries(
            lambda: bot.send_state_event(
                RoomID(room_id), state_type(etype), content, state_key=state_key
            ),
            what=etype,
            max_attempts=5,
        )
