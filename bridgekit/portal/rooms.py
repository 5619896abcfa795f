"""Portal rooms as Matrix objects: finding or creating them (bridge info, avatar, alias, join
rule, invites, members, space, history), and the aliases and join rules that follow their remote
chats afterwards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from mautrix.errors import MatrixRequestError

from ..contract.connector import LoginInfo, NetworkClient, NetworkConnector
from ..contract.events import ChatInfo, PortalKey, RemoteBackfill, SpaceInfo
from ..matrix.client import state_type, with_retries
from ..objects.portal import Portal
from .clients import client_for

if TYPE_CHECKING:
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from .member_sync import MemberSync
    from .puppets import Puppets

log = logging.getLogger("bridgekit.portal.portals")


class SpacePlacer(Protocol):
    """Where a portal goes in the spaces (:class:`~.spaces.Spaces`). A protocol, bound late
    (:meth:`~.portals.PortalService.attach`): the spaces are made after these services, from
    them, so this side names only what it calls."""

    async def place(
        self, portal: Portal, parent: SpaceInfo | None, login: LoginInfo | None
    ) -> None: ...


class HistoryFiller(Protocol):
    """A portal's history (:class:`~.backfill.Backfill`): made after these services and
    sending through them, so bound late like :class:`SpacePlacer`."""

    pending: set[tuple[str, PortalKey]]

    async def created(self, portal: Portal, client: NetworkClient | None) -> None: ...

    async def due(self, portal: Portal, login_id: str | None) -> None: ...

    async def handle(
        self, portal: Portal, login_id: str | None, evt: RemoteBackfill, seq: int
    ) -> None: ...


class Rooms:
    """The portal rooms: each made once, with its members, space and history."""

    #: Set by :meth:`~.portals.PortalService.attach` (made after the portal services).
    spaces: SpacePlacer
    backfill: HistoryFiller

    def __init__(
        self,
        *,
        store: Store,
        matrix: MatrixClient,
        clients: Mapping[str, NetworkClient],
        connectors: Mapping[str, NetworkConnector],
        bot_mxid: str,
        puppets: Puppets,
        member_sync: MemberSync,
    ) -> None:
        self.store = store
        self.matrix = matrix
        self.clients = clients  # the live map of loaded logins
        self.connectors = connectors  # the live map of enabled connectors
        self.bot_mxid = bot_mxid
        self.puppets = puppets
        self.member_sync = member_sync
        self._create_locks: dict[tuple[str, PortalKey], asyncio.Lock] = {}

    async def get_or_create(
        self,
        network: str,
        key: PortalKey,
        login_id: str | None,
        *,
        alias_localpart: str | None = None,
        room_id: str | None = None,
        by_alias: bool = False,
    ) -> Portal | None:
        """The portal for ``key``, creating its room (or plumbing ``room_id``) if needed;
        ``by_alias``: because someone is joining ``alias_localpart`` right now."""
        portal = await self.store.get_portal(network, key)
        if portal and portal.mxid:
            return portal
        lock = self._create_locks.setdefault((network, key), asyncio.Lock())
        async with lock:
            portal = await self.store.get_portal(network, key)
            if portal and portal.mxid:
                return portal
            client = client_for(self.clients, network, key, login_id)
            info = ChatInfo()
            if client is not None:
                info = await client.get_chat_info(key)
            elif room_id is None and alias_localpart is None:
                log.warning("No login can create portal %s/%s", network, key)
                return None
            portal = portal or cast(Portal, self.store.new_portal(network, key))
            portal.name, portal.topic, portal.is_dm = info.name, info.topic, info.is_dm
            if room_id is not None:
                portal.mxid = room_id
                portal.plumbed = True
                try:
                    await self.set_bridge_info(portal)
                except Exception as e:  # a plumbed room may not give the bot state power
                    log.warning("Could not set bridge info in plumbed room %s: %s", room_id, e)
            else:
                alias_localpart = alias_localpart or (None if info.is_dm else info.alias)
                portal.mxid = await self._create_room(
                    portal, client, info, alias_localpart, asked=by_alias
                )
            await portal.save()
            await self.member_sync.apply(portal, info, client)
            await self.spaces.place(portal, info.parent, client and client.login)
            if (
                not portal.plumbed
            ):  # its history before anything else (bridgekit/portal/backfill.py)
                await self.backfill.created(portal, client)
            return portal

    def _bridge_info(self, portal: Portal) -> tuple[str, dict[str, Any]]:
        connector = self.connectors.get(portal.network)
        display = getattr(connector, "display_name", portal.network)
        content = {
            "bridgebot": self.bot_mxid,
            "creator": self.bot_mxid,
            "protocol": {"id": portal.network, "displayname": display},
            "channel": {"id": portal.key.id, "displayname": portal.name or portal.key.id},
        }
        return f"net.bridgekit://{portal.network}/{portal.key.id}", content

    async def set_bridge_info(self, portal: Portal) -> None:
        bot = self.matrix.bot
        assert bot is not None and portal.mxid
        state_key, content = self._bridge_info(portal)
        for etype in ("m.bridge", "uk.half-shot.bridge"):
            await with_retries(
                lambda etype=etype: bot.send_state_event(
                    portal.mxid, state_type(etype), content, state_key
                ),
                what="bridge info",
                max_attempts=5,
            )

    async def _create_room(
        self,
        portal: Portal,
        client: NetworkClient | None,
        info: ChatInfo,
        alias_localpart: str | None,
        *,
        asked: bool = False,
    ) -> str:
        """Create the portal's room. ``asked``: made because someone joins its alias right
        now; the homeserver does not say who, so they cannot be invited, and the room is
        public even for a closed chat. It still starts with history visible from each
        member's join, the connector closes it when it reports the chat closed, and a
        newcomer the network refuses is removed (``remove_from_portal``)."""
        bot = self.matrix.bot
        assert bot is not None
        state_key, bridge_info = self._bridge_info(portal)
        initial_state: list[dict[str, Any]] = [
            {"type": t, "state_key": state_key, "content": bridge_info}
            for t in ("m.bridge", "uk.half-shot.bridge")
        ]
        invitees: list[str] = []
        if client is not None:
            invitees.append(client.login.user_mxid)
        if info.avatar_url and not info.is_dm:
            try:
                mxc = await self.puppets.avatar_mxc(info.avatar_url)
                initial_state.append(
                    {"type": "m.room.avatar", "state_key": "", "content": {"url": mxc}}
                )
                portal.avatar_url = info.avatar_url
            except Exception as e:
                log.warning("Could not copy the avatar of %s: %s", portal.key, e)
        known = info.joinable if info.joinable is not None else alias_localpart is not None
        public = (asked or known) and not info.is_dm
        if public:
            initial_state.append(
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}
            )
        if info.joinable is False and not info.is_dm:  # a closed chat: see set_join_rule
            initial_state.append(
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": "joined"},
                }
            )
        encryptor = self.matrix.encryptor
        encryption = encryptor.new_room_state() if encryptor is not None else []
        initial_state += encryption
        room_id = await with_retries(
            lambda: bot.create_room(
                alias_localpart=alias_localpart,
                name=None if info.is_dm else portal.name,
                topic=portal.topic,
                is_direct=info.is_dm,
                invitees=invitees,
                initial_state=initial_state,
                # No power-level override: the bot creates the room, so it is the creator
                # (v12 rooms give creators unlimited power and refuse them in `users`).
            ),
            what=f"creating the room for {portal.network}/{portal.key}",
        )
        log.info("Created portal room %s for %s/%s", room_id, portal.network, portal.key)
        if encryptor is not None:
            content = encryption[0]["content"] if encryption else None
            await encryptor.set_encryption(room_id, content)
        if client is not None:
            dp = await self.puppets.double_puppet_intent(client.login.user_mxid)
            if dp is not None:
                try:
                    await dp.join_room(room_id)
                except Exception as e:
                    log.warning("Double puppet could not join %s: %s", room_id, e)
        return str(room_id)

    async def add_alias(self, portal: Portal, localpart: str) -> bool:
        """Point the alias ``localpart`` at the portal's room; False if it cannot be."""
        bot = self.matrix.bot
        assert portal.mxid and bot is not None
        if portal.is_dm:
            return False
        try:
            await with_retries(
                lambda: bot.add_room_alias(portal.mxid, localpart), what="room alias"
            )
        except MatrixRequestError as e:
            log.warning("Could not add alias %s to %s: %s", localpart, portal.mxid, e)
            return False
        log.info("Alias %s now points at %s (%s)", localpart, portal.mxid, portal.key)
        return True

    async def set_join_rule(self, portal: Portal, rule: str) -> None:
        """Open (``public``) or close (``invite``) the room as its chat opens or closes.

        A closed chat's room also shows new members only what is said after they join
        (history visibility ``joined``): whoever is let in later, and may then be refused by
        the network, must not read what the chat said before. Visibility applies to events
        as they are sent, so reopening (``shared``) exposes nothing said while closed."""
        await self._set_state(portal, "m.room.join_rules", "join_rule", rule)
        visibility = "shared" if rule == "public" else "joined"
        await self._set_state(portal, "m.room.history_visibility", "history_visibility", visibility)

    async def _set_state(self, portal: Portal, etype_name: str, key: str, value: str) -> None:
        """Set one key of a room state event, unless it is that already (a closed chat's room
        is told again each time the connection watching it rejoins)."""
        bot = self.matrix.bot
        assert portal.mxid and bot is not None
        etype = state_type(etype_name)
        try:
            current = await bot.get_state_event(portal.mxid, etype)
            if current.serialize().get(key) == value:
                return
        except MatrixRequestError:
            pass
        await with_retries(
            lambda: bot.send_state_event(portal.mxid, etype, {key: value}), what=etype_name
        )
        log.info("Room %s of %s/%s: %s %s", portal.mxid, portal.network, portal.key, key, value)
