"""One Matrix user on XMPP: a light client that sends through the shared component.

It owns no connection. Its JID is ``<template>@<component>``; it is an occupant of the MUCs of
the portals its user is in (rejoined after every reconnect and restart) and the sender of
their 1:1 chats. Its state follows the component's: CONNECTED while the component is, and
TRANSIENT_DISCONNECT (with the reason) while it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bridgekit.contract.connector import (
    FORWARD,
    BackfillHandler,
    BridgeStateEvent,
    EditHandler,
    FetchResult,
    MessageResult,
    NetworkClient,
    PresenceHandler,
    ReactionHandler,
    ReadReceiptHandler,
    RedactionHandler,
    TypingHandler,
)
from bridgekit.contract.events import (
    ChatInfo,
    ChatMember,
    MatrixEdit,
    MatrixMessage,
    MatrixPresence,
    MatrixReaction,
    MatrixReactionRemove,
    MatrixReadReceipt,
    MatrixRedaction,
    MatrixTyping,
    PortalKey,
    UserInfo,
)

from .jid import clean_text, safe_nick
from .mam import archive_page
from .muc_room import RESOURCE, JoinError, nick_candidates
from .outbound import render, stanza_id_for
from .room_changes import RoomChanges

if TYPE_CHECKING:
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.client")

SHOW = {"online": "", "unavailable": "away", "offline": "xa"}


class XMPPClient(
    NetworkClient,
    EditHandler,
    RedactionHandler,
    ReactionHandler,
    TypingHandler,
    ReadReceiptHandler,
    RoomChanges,
    BackfillHandler,
    PresenceHandler,
):
    connector: XMPPConnector

    def __init__(self, connector: XMPPConnector, login) -> None:  # noqa: ANN001
        super().__init__(connector, login)
        self.rooms: dict[str, str] = {}  # MUCs this user is in: room -> nick
        self.contacts: set[str] = set()
        self.show = ""
        self._loaded = False
        self._rejoin: asyncio.Task[None] | None = None

    @property
    def jid(self) -> str:
        return self.login.remote_id

    @property
    def full_jid(self) -> str:
        return f"{self.jid}/{RESOURCE}"

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> None:
        if not self._loaded:
            stored = await self.connector.idmap.rooms(self.login.id)
            self.rooms = {**stored, **self.rooms}
            self._loaded = True
        self.connector.register(self)
        component = self.connector.component
        if component.online.is_set():
            self.on_online()
        else:
            # Before the first connection: CONNECTING; while the component reconnects: a
            # transient disconnect, whatever state the runtime gave this login meanwhile.
            state = (
                BridgeStateEvent.BAD_CREDENTIALS
                if component.auth_failed
                else BridgeStateEvent.TRANSIENT_DISCONNECT
                if component.was_online
                else BridgeStateEvent.CONNECTING
            )
            reason = component.last_error or "waiting for the XMPP server"
            self.connector.bridge.report_state(self.login.id, state, reason)

    def on_online(self) -> None:
        # Reporting CONNECTED makes the runtime catch up on every room (fetch_messages).
        self.connector.catchup.expect(self.login.id, set(self.rooms))
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)
        if self._rejoin is None or self._rejoin.done():
            self._rejoin = asyncio.get_running_loop().create_task(self._rejoin_rooms())

    def on_offline(self, reason: str) -> None:
        # A refused handshake is the bridge's credentials, not a passing outage.
        state = (
            BridgeStateEvent.BAD_CREDENTIALS
            if self.connector.component.auth_failed
            else BridgeStateEvent.TRANSIENT_DISCONNECT
        )
        self.connector.bridge.report_state(self.login.id, state, reason)

    async def _rejoin_rooms(self) -> None:
        for room in list(self.rooms):
            try:
                await self.ensure_joined(room)
            except Exception as e:
                log.warning("%s could not rejoin %s: %s", self.jid, room, e)

    async def disconnect(self) -> None:
        if self._rejoin is not None:
            self._rejoin.cancel()
        for room in list(self.rooms):
            self.connector.muc.leave(self.login.id, self.jid, room, "Matrix bridge stopping")
        self.connector.unregister(self)

    def is_in_portal(self, portal: PortalKey) -> bool:
        if portal.receiver:
            return portal.receiver == self.login.id
        return portal.id in self.rooms

    # -- rooms --------------------------------------------------------------------------------

    async def nick(self) -> str:
        chosen = self.login.metadata.get("nick")
        if isinstance(chosen, str) and chosen.strip():
            return chosen
        name = await self.connector.bridge.matrix_displayname(self.login.user_mxid)
        localpart = self.login.user_mxid[1:].split(":", 1)[0]
        return safe_nick(name or localpart, fallback=safe_nick(localpart))

    async def want_room(self, room: str) -> None:
        if room not in self.rooms:
            self.rooms[room] = ""
            await self.connector.idmap.set_rooms(self.login.id, self.rooms)

    async def forget_room(self, room: str) -> None:
        if self.rooms.pop(room, None) is not None:
            await self.connector.idmap.set_rooms(self.login.id, self.rooms)

    async def ensure_joined(self, room: str) -> str:
        await self.want_room(room)
        for attempt in range(5):
            await self.connector.wait_online()
            try:
                joined = await self.connector.muc.join(
                    self.login.id, self.jid, room, self.rooms.get(room) or await self.nick()
                )
                break
            except JoinError as e:
                # Lost with the connection: join again once it is back. Refusals are final.
                if e.condition != "remote-server-not-found" or attempt == 4:
                    raise
        if self.rooms.get(room) != joined:
            self.rooms[room] = joined
            await self.connector.idmap.set_rooms(self.login.id, self.rooms)
        return joined

    async def kept_out(self, room: str, what: str, reason: str | None) -> bool:
        """The MUC ``room`` keeps this login's occupant out (``what``: "was banned from"...).

        With ``follow_room_access`` the room is forgotten (no rejoin), its user is removed
        from the portal room by the bridge bot and told in their management room; returns
        False (and does nothing) without it."""
        if not self.connector.setting("follow_room_access"):
            return False
        await self.forget_room(room)
        why = f"{what} the XMPP room {room}" + (f": {reason}" if reason else "")
        bridge = self.connector.bridge
        removed = await bridge.remove_from_portal(self.login.id, PortalKey(room), why)
        said = f"You {why}." + (" You were removed from its Matrix room." if removed else "")
        await bridge.notify_user(self.login.user_mxid, said)
        return True

    async def change_nick(self) -> None:
        """The login's nick changed: take it in every joined room (XEP-0045 nick change)."""
        candidates = nick_candidates(await self.nick())
        nick = candidates[0]
        for room, current in list(self.rooms.items()):
            state = self.connector.muc.rooms.get(room)
            # A nick the room made unique ("Alice [m]") stays: asking again would only conflict.
            if state is None or not state.joined(self.login.id) or current in candidates:
                continue
            # The record changes when the room confirms (status 303, see nick_taken); a room
            # that refuses (409 conflict) leaves the old nick in place, and so the record.
            self.connector.component.make_presence(pto=f"{room}/{nick}", pfrom=self.full_jid).send()

    async def nick_taken(self, room: str, nick: str) -> None:
        """The room confirmed a nick change of this login's occupant: remember it."""
        if room in self.rooms and self.rooms[room] != nick:
            self.rooms[room] = nick
            await self.connector.idmap.set_rooms(self.login.id, self.rooms)

    async def _target(self, portal: PortalKey, join: bool = True) -> tuple[str, str, str | None]:
        """(to, type, room or None) for sending into ``portal``."""
        if portal.receiver:
            if portal.receiver != self.login.id:
                raise PermissionError("this chat belongs to another login")
            self.contacts.add(portal.id)
            return portal.id, "chat", None
        if join:
            try:
                await self.ensure_joined(portal.id)
            except JoinError as e:
                raise RuntimeError(f"cannot join the XMPP room {portal.id}: {e}") from e
        return portal.id, "groupchat", portal.id

    def _ready(self, portal: PortalKey) -> bool:
        """Whether a best-effort stanza (typing, receipt) can go out right now."""
        if not self.connector.component.online.is_set():
            return False
        room = self.connector.muc.rooms.get(portal.id)
        return bool(portal.receiver) or (room is not None and room.joined(self.login.id))

    # -- messages -----------------------------------------------------------------------------

    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        portal, content = msg.portal, msg.content
        to, mtype, room = await self._target(portal)
        idmap, out = self.connector.idmap, self.connector.outbound
        sent_id = stanza_id_for(msg.event_id)
        if msg.maybe_sent and room is not None:
            known = await idmap.resolve(portal, sent_id)
            if known != sent_id:
                return MessageResult(known)
        desc = None
        if content.media_url and content.media_url.startswith("mxc://"):
            filename = str((msg.raw or {}).get("filename") or content.body or "file")
            link = await self.connector.bridge.media_url(content.media_url, filename)
            url = await out.upload.share(
                self.full_jid, content.media_url, link, filename, content.media_info or {}
            )
            caption = content.body if content.body and content.body != filename else None
            body, xhtml, desc = url, None, caption or filename
        else:
            body, xhtml = render(content)
        limit = int(self.connector.setting("max_body_bytes"))
        if len(body.encode("utf-8")) > limit:
            raise ValueError(
                f"message too long for XMPP ({len(body.encode())} bytes, limit {limit})"
            )
        stanza = out.text_message(self.full_jid, to, mtype, sent_id, body, xhtml)
        if desc is not None:
            out.add_oob(stanza, body, desc)
        if content.reply_to:
            out.add_reply(stanza, content.reply_to, self._reply_to_jid(portal, msg.reply_to_sender))
        canonical = await out.send(stanza, room)
        await idmap.add_aliases(portal, canonical, sent_id)
        await idmap.remember(portal, canonical, f"login:{self.login.id}", sent_id)
        return MessageResult(remote_id=canonical)

    def _reply_to_jid(self, portal: PortalKey, sender_remote: str | None) -> str | None:
        if not sender_remote:
            return None
        if portal.receiver:
            return sender_remote
        if sender_remote.startswith(portal.id + "/"):
            return sender_remote
        nick = self.connector.muc.nick_of_remote(portal.id, sender_remote)
        return f"{portal.id}/{nick}" if nick else None

    async def handle_matrix_edit(self, edit: MatrixEdit) -> MessageResult | None:
        to, mtype, room = await self._target(edit.portal)
        original = await self.connector.idmap.sent_id(edit.portal, edit.target_id)
        body, xhtml = render(edit.content)
        stanza = self.connector.outbound.text_message(
            self.full_jid, to, mtype, stanza_id_for(edit.event_id), body, xhtml
        )
        self.connector.outbound.add_correction(stanza, original)
        await self.connector.outbound.send(stanza, room)
        return None

    async def handle_matrix_redaction(self, redaction: MatrixRedaction) -> None:
        to, mtype, _ = await self._target(redaction.portal)
        self.connector.outbound.retraction(self.full_jid, to, mtype, redaction.target_id).send()

    async def _send_reactions(self, portal: PortalKey, target: str, change) -> None:  # noqa: ANN001
        to, mtype, _ = await self._target(portal)
        who = f"login:{self.login.id}"
        keys = await self.connector.idmap.reactions(portal, target, who)
        keys = change(keys)
        await self.connector.idmap.set_reactions(portal, target, who, keys)
        self.connector.outbound.reactions(self.full_jid, to, mtype, target, keys).send()

    async def handle_matrix_reaction(self, reaction: MatrixReaction) -> MessageResult | None:
        key = clean_text(reaction.key)
        await self._send_reactions(
            reaction.portal, reaction.target_id, lambda keys: keys if key in keys else [*keys, key]
        )
        return None

    async def handle_matrix_reaction_remove(self, removal: MatrixReactionRemove) -> None:
        key = clean_text(removal.key)
        await self._send_reactions(
            removal.portal, removal.target_id, lambda keys: [k for k in keys if k != key]
        )

    async def handle_matrix_typing(self, typing: MatrixTyping) -> None:
        if not self._ready(typing.portal):
            return
        to, mtype, _ = await self._target(typing.portal, join=False)
        state = "composing" if typing.typing else "active"
        self.connector.outbound.chat_state(self.full_jid, to, mtype, state).send()

    async def handle_matrix_read_receipt(self, receipt: MatrixReadReceipt) -> None:
        if not receipt.remote_id or not self._ready(receipt.portal):
            return
        to, mtype, _ = await self._target(receipt.portal, join=False)
        self.connector.outbound.displayed(self.full_jid, to, mtype, receipt.remote_id).send()

    # -- presence -------------------------------------------------------------------------------

    async def handle_matrix_presence(self, presence: MatrixPresence) -> None:
        self.show = SHOW.get(presence.presence, "")
        if not self.connector.component.online.is_set():
            return
        status = clean_text(presence.status_msg or "")[:200]
        targets = [
            f"{room}/{nick}"
            for room, nick in self.rooms.items()
            if (r := self.connector.muc.rooms.get(room)) and r.joined(self.login.id)
        ]
        for to in [*targets, *self.contacts]:
            pres = self.connector.component.make_presence(pto=to, pfrom=self.full_jid)
            if self.show:
                pres["show"] = self.show
            if status:
                pres["status"] = status
            pres.send()

    # -- information ------------------------------------------------------------------------------

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        if portal.receiver:
            info = await self.connector.user_info(portal.id)
            return ChatInfo(
                name=info.name,
                is_dm=True,
                dm_user=portal.id,
                members=[ChatMember(portal.id, name=info.name)],
            )
        return await self.connector.room_info(portal.id)

    async def get_user_info(self, remote_user_id: str) -> UserInfo | None:
        return await self.connector.user_info(remote_user_id)

    async def fetch_messages(
        self,
        portal: PortalKey,
        anchor: str | None,
        direction: str,
        limit: int,
        cursor: str | None = None,
    ) -> FetchResult:
        """The MUC's archive (XEP-0313), a page at a time; 1:1 chats have none here."""
        if portal.receiver:
            return FetchResult()
        archived: set[str] = set()
        position = cursor or anchor
        try:
            if portal.id not in self.rooms or (direction == FORWARD and position is None):
                return FetchResult()
            await self.ensure_joined(portal.id)
            room = self.connector.muc.rooms.get(portal.id)
            if room is None or room.listener != self.login.id:
                return FetchResult()  # the room's listener catches up for everyone
            self.connector.catchup.started(self.login.id, portal.id)
            return await archive_page(
                self.connector, self, portal.id, direction, position, limit, archived
            )
        finally:
            # Live messages held meanwhile go on, after these (see mam.CatchUps).
            self.connector.catchup.finish(self.login.id, portal.id, archived)
