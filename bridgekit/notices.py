"""Notices and invitations from the bridge bot: what connectors say to users through it.

Connectors reach users through these (``BridgeAPI.notify_user``, ``notify_portal``,
``invite_to_portal``, ``remove_from_portal``) instead of the runtime's store and Matrix client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from mautrix.errors import MatrixRequestError
from mautrix.types import Membership, RoomID, UserID

from .contract.connector import NetworkClient
from .contract.events import PortalKey
from .database.store import Store
from .matrix.client import MatrixClient, message_type, with_retries
from .objects.portal import Portal

log = logging.getLogger("bridgekit")


class GetOrCreateRoom(Protocol):
    """The portal service's ``rooms.get_or_create`` (built after this service)."""

    async def __call__(
        self, network: str, key: PortalKey, login_id: str | None
    ) -> Portal | None: ...


class Notices:
    """What the bridge bot says to users, and the invitations and kicks it makes for them."""

    def __init__(
        self,
        store: Store,
        matrix: MatrixClient,
        clients: Mapping[str, NetworkClient],
        get_or_create_room: GetOrCreateRoom,
    ) -> None:
        """``clients``: the loaded logins' clients by login id (the login service's index)."""
        self.store = store
        self.matrix = matrix
        self.clients = clients
        self._get_or_create_room = get_or_create_room

    async def send_notice(self, room_id: str, text: str, html: str | None = None) -> None:
        bot = self.matrix.bot
        assert bot is not None
        content: dict[str, Any] = {"msgtype": "m.notice", "body": text}
        if html:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        try:
            etype, content = await self.matrix.prepare_event(room_id, "m.room.message", content)
            await with_retries(
                lambda: bot.send_message_event(room_id, message_type(etype), content),
                what="sending a notice",
                max_attempts=5,
            )
        except Exception:
            log.exception("Could not send notice to %s", room_id)

    async def notify_user(self, user_mxid: str, text: str) -> bool:
        user = await self.store.get_user(user_mxid)
        if user is None or not user.management_room:
            return False
        await self.send_notice(user.management_room, text)
        return True

    async def notify_portal(self, network: str, portal: PortalKey, text: str) -> bool:
        found = await self.store.get_portal(network, portal)
        if found is None or not found.mxid:
            return False
        await self.send_notice(found.mxid, text)
        return True

    async def invite_to_portal(
        self, login_id: str, portal: PortalKey, reason: str = ""
    ) -> str | None:
        client = self.clients.get(login_id)
        if client is None:
            return None
        network, user = client.login.network, client.login.user_mxid
        existing = await self.store.get_portal(network, portal)
        created = await self._get_or_create_room(network, portal, login_id)
        if created is None or not created.mxid:
            return None
        if existing is not None and existing.mxid:  # a new room invited them as it was made
            bot = self.matrix.bot
            assert bot is not None
            try:
                await bot.invite_user(created.mxid, UserID(user), reason=reason or None)
            except Exception as e:  # already in the room, or the bot may not invite
                log.info("Could not invite %s to %s: %s", user, created.mxid, e)
        return created.mxid

    async def remove_from_portal(self, login_id: str, portal: PortalKey, reason: str) -> bool:
        client = self.clients.get(login_id)
        if client is None:
            return False
        found = await self.store.get_portal(client.login.network, portal)
        if found is None or not found.mxid:
            return False
        room, user = RoomID(found.mxid), UserID(client.login.user_mxid)
        member = await self.matrix.state_store.get_member(room, user)
        if member is not None and member.membership not in (Membership.JOIN, Membership.INVITE):
            return False  # already out (the state store is rebuilt from transactions)
        bot = self.matrix.bot
        assert bot is not None
        try:
            await with_retries(
                lambda: bot.kick_user(room, user, reason=reason), what="kick", max_attempts=5
            )
        except MatrixRequestError as e:  # not in the room after all; the bot lacks power
            log.info("Could not remove %s from %s: %s", user, room, e)
            return False
        return True
