"""Portals: remote chats as Matrix rooms, and remote events sent into them.

Every remote event reaches :meth:`PortalService.handle_remote_event` from the outbox, one portal
at a time in order. Sends are retried until they succeed (a homeserver outage only delays them)
and use a transaction id derived from the outbox sequence number, so a send retried after a
crash is deduplicated by the homeserver rather than posted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mautrix.appservice import IntentAPI
from mautrix.errors import MatrixRequestError
from mautrix.types import PresenceState

from ..contract.connector import NetworkClient
from ..contract.events import (
    ChatInfo,
    MessageContent,
    PortalKey,
    RemoteBackfill,
    RemoteChatInfoChange,
    RemoteChatResync,
    RemoteEdit,
    RemoteEvent,
    RemoteMembership,
    RemoteMessage,
    RemotePresence,
    RemoteReaction,
    RemoteReactionRemove,
    RemoteReceipt,
    RemoteRedaction,
    RemoteTyping,
    RemoteUserInfoChange,
)
from ..database.store import MessageRow, Portal, ReactionRow
from ..matrix.client import send_event, with_retries
from ..matrix.fetcher import FetchError
from ..outbox.coalesce import merge_contents
from . import message_parts
from .custom_emoji import CustomEmojis
from .matrix_to_remote import MatrixToRemote
from .member_sync import MemberSync
from .puppets import Puppets
from .rooms import Rooms

if TYPE_CHECKING:
    from ..bridge import Bridge

log = logging.getLogger("bridgekit.portal.portals")


def _link_instead(body: str, url: str, why: str) -> dict[str, Any]:
    """A remote file the fetcher would not bring over: its link as text, and why."""
    caption = body if body and body != "file" and body not in url else ""
    text = f"{caption}\n{url}" if caption else url
    return {"msgtype": "m.text", "body": f"{text}\n(not bridged as a file: {why})"}


class PortalService(Puppets, MatrixToRemote, Rooms):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__(bridge)
        self._create_locks: dict[tuple[str, PortalKey], asyncio.Lock] = {}
        self._ghost_locks = [asyncio.Lock() for _ in range(64)]
        self._avatar_locks = [asyncio.Lock() for _ in range(16)]
        self.emojis = CustomEmojis(bridge.store, self.avatar_mxc)
        self.member_sync = MemberSync(self)

    # -- portal rooms ------------------------------------------------------------------------

    def _client_for(
        self, network: str, key: PortalKey, login_id: str | None
    ) -> NetworkClient | None:
        if login_id and login_id in self.bridge.clients:
            return self.bridge.clients[login_id]
        for client in self.bridge.clients.values():
            if client.login.network == network and client.is_in_portal(key):
                return client
        return None

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
        portal = await self.bridge.store.get_portal(network, key)
        if portal and portal.mxid:
            return portal
        lock = self._create_locks.setdefault((network, key), asyncio.Lock())
        async with lock:
            portal = await self.bridge.store.get_portal(network, key)
            if portal and portal.mxid:
                return portal
            client = self._client_for(network, key, login_id)
            info = ChatInfo()
            if client is not None:
                info = await client.get_chat_info(key)
            elif room_id is None and alias_localpart is None:
                log.warning("No login can create portal %s/%s", network, key)
                return None
            portal = portal or Portal(network=network, key=key)
            portal.name, portal.topic, portal.is_dm = info.name, info.topic, info.is_dm
            if room_id is not None:
                portal.mxid = room_id
                portal.plumbed = True
                try:
                    await self._set_bridge_info(portal)
                except Exception as e:  # a plumbed room may not give the bot state power
                    log.warning("Could not set bridge info in plumbed room %s: %s", room_id, e)
            else:
                alias_localpart = alias_localpart or (None if info.is_dm else info.alias)
                portal.mxid = await self._create_room(
                    portal, client, info, alias_localpart, asked=by_alias
                )
            await self.bridge.store.save_portal(portal)
            await self.member_sync.apply(portal, info, client)
            await self.bridge.spaces.place(portal, info.parent, client and client.login)
            if (
                not portal.plumbed
            ):  # its history before anything else (bridgekit/portal/backfill.py)
                await self.bridge.backfill.created(portal, client)
            return portal

    # -- remote -> Matrix ----------------------------------------------------------------------

    async def handle_remote_event(
        self, network: str, login_id: str | None, evt: RemoteEvent, seq: int
    ) -> None:
        if isinstance(evt, RemoteUserInfoChange):  # the user's, not a room's
            await self._remote_user_info(network, login_id, evt)
            return
        handler = room_event_handler(type(evt))
        if handler is None:  # a kind the runtime does not know (a connector's own subclass)
            log.error("No handler for remote event kind %r from %s: dropped", evt.kind, network)
            return
        needs_room = not isinstance(evt, RemoteTyping | RemoteReceipt | RemotePresence)
        if needs_room:
            portal = await self.get_or_create(network, evt.portal, login_id)
        else:
            portal = await self.bridge.store.get_portal(network, evt.portal)
        if portal is None or not portal.mxid:
            return
        if self.bridge.backfill.pending:  # history due before this (bridgekit/portal/backfill.py)
            await self.bridge.backfill.due(portal, login_id)
        await self.gate.wait_idle(portal.mxid)  # ids of what Matrix is sending
        await handler(self, portal, login_id, evt, seq)

    async def handle_remote_messages(
        self, network: str, login_id: str | None, evts: list[RemoteMessage], seq: int
    ) -> None:
        """Several queued lines of one sender, sent as one Matrix event (see outbox/coalesce.py)."""
        portal = await self.get_or_create(network, evts[0].portal, login_id)
        if portal is None or not portal.mxid:
            return
        if self.bridge.backfill.pending:  # history due before these (bridgekit/portal/backfill.py)
            await self.bridge.backfill.due(portal, login_id)
        await self.gate.wait_idle(portal.mxid)
        # Echoes and duplicate deliveries drop out (one lookup for the batch), and so does a
        # line delivered twice within the batch.
        seen = await self.bridge.store.known_remote_ids(
            portal.network, portal.key, [e.id for e in evts if e.id]
        )
        fresh = []
        for e in evts:
            if e.id and e.id in seen:
                continue
            if e.id:
                seen.add(e.id)
            fresh.append(e)
        if len(fresh) <= 1:
            if fresh:
                await self._send_message(portal, login_id, fresh[0], seq)
            return
        first = fresh[0]
        intent = await self.sender_intent(portal, first.sender, login_id)
        content = await self._message_content(portal, merge_contents([e.content for e in fresh]))
        event_id = await self._send(
            intent, portal, "m.room.message", content, f"bk{seq}", first.timestamp
        )
        self.bridge.metrics.merged_lines(len(fresh))
        # The row names the newest line (its id and time), the rest are aliases: catching up
        # after a reconnect asks for what came after the newest remote id in the portal.
        ids = [e.id for e in fresh if e.id]
        await self._remember(
            portal,
            ids[-1] if ids else f"noid:{seq}",
            event_id,
            intent,
            fresh[-1],
            content,
            extra_ids=ids[:-1],
        )

    async def _send(
        self,
        intent: IntentAPI,
        portal: Portal,
        etype: str,
        content: dict[str, Any],
        txn_id: str,
        ts: float | None,
    ) -> str:
        ts_ms = int(ts * 1000) if ts else None
        assert portal.mxid
        event_id = await with_retries(
            lambda: send_event(intent, portal.mxid, etype, content, txn_id, ts_ms),
            what=f"sending {etype} to {portal.mxid}",
        )
        self.bridge.metrics.events_out("matrix")
        return str(event_id)

    async def _message_content(self, portal: Portal, mc: MessageContent) -> dict[str, Any]:
        content: dict[str, Any] = {"msgtype": mc.msgtype, "body": mc.body}
        if mc.html:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = mc.html
        if mc.media_url:
            try:
                content["url"] = await self.to_mxc(mc.media_url, mc.body or "file")
                if mc.media_info:
                    content["info"] = mc.media_info
            except FetchError as e:  # the bare link, and why it is not the file itself
                content = _link_instead(mc.body, mc.media_url, str(e))
        relates: dict[str, Any] = {}
        reply_row = thread_row = None
        if mc.reply_to:
            reply_row = await self.bridge.store.message_by_remote(
                portal.network, portal.key, mc.reply_to
            )
        if mc.thread_root:
            thread_row = await self.bridge.store.message_by_remote(
                portal.network, portal.key, mc.thread_root
            )
        if thread_row:
            relates = {
                "rel_type": "m.thread",
                "event_id": thread_row.event_id,
                "is_falling_back": reply_row is None,
                "m.in_reply_to": {"event_id": (reply_row or thread_row).event_id},
            }
        elif reply_row:
            relates = {"m.in_reply_to": {"event_id": reply_row.event_id}}
        if relates:
            content["m.relates_to"] = relates
        # A full MXID (a Matrix user's puppet mentioned on the network) passes through as is.
        mentions = [
            m if m.startswith("@") and ":" in m else self.bridge.ghost_mxid(m, portal.network)
            for m in mc.mentions
        ]
        if reply_row and reply_row.sender_mxid not in mentions:
            mentions.append(reply_row.sender_mxid)
        content["m.mentions"] = {"user_ids": mentions} if mentions else {}
        return content

    async def _remote_message(
        self, portal: Portal, login_id: str | None, evt: RemoteMessage, seq: int | str
    ) -> None:
        store = self.bridge.store
        if evt.id and await store.known_remote_ids(portal.network, portal.key, (evt.id,)):
            return  # an echo of a message we sent, or a duplicate delivery (one query)
        await self._send_message(portal, login_id, evt, seq)

    async def _send_message(
        self, portal: Portal, login_id: str | None, evt: RemoteMessage, seq: int | str
    ) -> None:
        """Send a remote message known to be new (each of its parts: portal/message_parts.py)."""
        await message_parts.send_message(
            self, portal, login_id, evt, f"bk{seq}", evt.id or f"noid:{seq}"
        )

    async def _remember(
        self,
        portal: Portal,
        remote_id: str,
        event_id: str,
        intent: IntentAPI,
        evt: RemoteMessage,
        content: dict[str, Any],
        part: str = "",
        extra_ids: list[str] | None = None,
    ) -> None:
        thread = content.get("m.relates_to", {})
        await self.bridge.store.add_message(
            MessageRow(
                network=portal.network,
                portal=portal.key,
                remote_id=remote_id,
                part=part,
                event_id=event_id,
                room_id=portal.mxid or "",
                sender_mxid=str(intent.mxid),
                sender_remote=evt.sender.remote_id if evt.sender else None,
                ts=int((evt.timestamp or time.time()) * 1000),
                thread_root=thread.get("event_id")
                if thread.get("rel_type") == "m.thread"
                else None,
            ),
            extra_ids or (),
        )

    async def _remote_edit(
        self, portal: Portal, login_id: str | None, evt: RemoteEdit, seq: int
    ) -> None:
        target = await message_parts.edit_target(self, portal, evt)
        if target is None:
            log.debug("Edit of unknown message %s", evt.target_id)
            return
        author = target.sender_remote
        if evt.sender and author and evt.sender.remote_id != author:
            log.warning("Ignoring %s's edit of %s's message", evt.sender.remote_id, author)
            return  # only the author may edit: a connector bug or a forged event otherwise
        intent = await self.sender_intent(portal, evt.sender, login_id)
        new = await self._message_content(portal, evt.content)
        new.pop("m.relates_to", None)
        content = {
            **new,
            "body": f"* {new['body']}",
            "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": target.event_id},
        }
        if "formatted_body" in new:
            content["formatted_body"] = f"* {new['formatted_body']}"
        await self._send(intent, portal, "m.room.message", content, f"bk{seq}", evt.timestamp)

    async def _remote_redaction(
        self, portal: Portal, login_id: str | None, evt: RemoteRedaction, seq: int
    ) -> None:
        await message_parts.redact_message(self, portal, login_id, evt)

    async def _remote_reaction(
        self, portal: Portal, login_id: str | None, evt: RemoteReaction, seq: int
    ) -> None:
        target = await self.bridge.store.message_by_remote(
            portal.network, portal.key, evt.target_id
        )
        sender = evt.sender.remote_id if evt.sender else ""
        if target is None:
            return
        key, extra = await self.emojis.reaction_key(portal.network, evt)
        if await self.bridge.store.get_reaction(
            portal.network, portal.key, evt.target_id, sender, key
        ):
            return
        intent = await self.sender_intent(portal, evt.sender, login_id)
        content = {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": target.event_id, "key": key},
            **extra,
        }
        event_id = await self._send(
            intent, portal, "m.reaction", content, f"bk{seq}", evt.timestamp
        )
        await self.bridge.store.add_reaction(
            ReactionRow(
                portal.network,
                portal.key,
                evt.target_id,
                sender,
                key,
                event_id,
                portal.mxid or "",
            )
        )

    async def _remote_reaction_remove(
        self, portal: Portal, login_id: str | None, evt: RemoteReactionRemove, seq: int
    ) -> None:
        sender = evt.sender.remote_id if evt.sender else ""
        key = await self.emojis.removal_key(portal.network, evt)
        row = await self.bridge.store.get_reaction(
            portal.network, portal.key, evt.target_id, sender, key
        )
        if row is None:
            return
        intent = await self.sender_intent(portal, evt.sender, login_id)
        assert portal.mxid
        await with_retries(lambda: intent.redact(portal.mxid, row.event_id), what="unreacting")
        await self.bridge.store.delete_reaction(row.event_id)

    async def _remote_presence(
        self, portal: Portal, login_id: str | None, evt: RemotePresence, seq: int
    ) -> None:
        # Presence belongs to the user, not the room: it does not join the ghost. A connector
        # that knows a newcomer's presence queues it before the join, so that the ghost's
        # first presence is set while no one can see it. Synapse (1.14x) has a race there: a
        # read of a user's presence that misses its in-memory cache stores the default
        # ("offline") when the database read returns, over an update made meanwhile, and its
        # own join handling reads the presence of whoever joins.
        intent = await self.sender_intent(portal, evt.sender, login_id, join=False)
        # ignore_cache: mautrix's presence cache is keyed by status message alone, so "away"
        # then "online" with no status would be skipped. A busy homeserver's transient error
        # is retried a few times rather than leaving the ghost in its old state.
        await with_retries(
            lambda: intent.set_presence(
                PresenceState(evt.presence), evt.status_msg, ignore_cache=True
            ),
            what="setting presence",
            max_attempts=5,
        )
        if evt.sender is not None and intent.mxid == self.bridge.ghost_mxid(
            evt.sender.remote_id, portal.network
        ):  # a ghost (not a double puppet: real users' clients keep their own presence)
            self.bridge.presence.set(intent.mxid, evt.presence, evt.status_msg, portal.network)

    async def _remote_typing(
        self, portal: Portal, login_id: str | None, evt: RemoteTyping, seq: int
    ) -> None:
        intent = await self.sender_intent(portal, evt.sender, login_id)
        assert portal.mxid
        await intent.set_typing(portal.mxid, timeout=evt.timeout_ms if evt.typing else 0)

    async def _remote_receipt(
        self, portal: Portal, login_id: str | None, evt: RemoteReceipt, seq: int
    ) -> None:
        target = await self.bridge.store.message_by_remote(
            portal.network, portal.key, evt.last_read_id
        )
        if target is None:
            return
        intent = await self.sender_intent(portal, evt.sender, login_id)
        assert portal.mxid
        await intent.mark_read(portal.mxid, target.event_id)

    async def _remote_chat_info(
        self, portal: Portal, login_id: str | None, evt: RemoteChatInfoChange, seq: int
    ) -> None:
        intent = await self.sender_intent(portal, evt.sender, login_id)
        bot = self.bridge.matrix.bot
        assert portal.mxid and bot is not None
        for attr, setter in (("name", "set_room_name"), ("topic", "set_room_topic")):
            value = getattr(evt, attr)
            if value is None or value == getattr(portal, attr):
                continue
            try:
                await with_retries(
                    lambda s=setter, v=value: getattr(intent, s)(portal.mxid, v), what=attr
                )
            except MatrixRequestError:  # the ghost lacks power: the bot does it
                await with_retries(
                    lambda s=setter, v=value: getattr(bot, s)(portal.mxid, v), what=attr
                )
            setattr(portal, attr, value)
        if evt.joinable is not None and not portal.is_dm and not portal.plumbed:
            await self._set_join_rule(portal, "public" if evt.joinable else "invite")
        if evt.avatar_url and evt.avatar_url != portal.avatar_url:
            try:
                mxc = await self.avatar_mxc(evt.avatar_url)
            except FetchError as e:
                log.info("Room avatar of %s not copied: %s", portal.key, e)
            else:
                await with_retries(
                    lambda: bot.set_room_avatar(portal.mxid, mxc), what="room avatar"
                )
                portal.avatar_url = evt.avatar_url
        await self.bridge.store.save_portal(portal)

    async def _remote_membership(
        self, portal: Portal, login_id: str | None, evt: RemoteMembership, seq: int
    ) -> None:
        client = self._client_for(portal.network, portal.key, login_id)
        assert portal.mxid
        mxid = self.bridge.ghost_mxid(evt.target, portal.network)
        if evt.membership == "join":
            await self.ghost_intent(portal.network, evt.target, client, portal)
            if evt.power_level is not None:
                await self.member_sync.set_level(portal, evt.target, evt.power_level)
            return
        if evt.power_level is not None and evt.membership == "power":
            await self.member_sync.set_level(portal, evt.target, evt.power_level)
            return
        intent = self.bridge.matrix.intent(mxid)
        bot = self.bridge.matrix.bot
        assert bot is not None
        if evt.membership in ("leave", "kick", "ban"):
            self.bridge.presence.forget(mxid)  # offline once the homeserver's timeout runs
        if evt.membership == "leave":
            await with_retries(
                lambda: intent.leave_room(portal.mxid, reason=evt.reason), what="leave"
            )
        elif evt.membership == "kick":
            await with_retries(
                lambda: bot.kick_user(portal.mxid, mxid, reason=evt.reason or ""), what="kick"
            )
        elif evt.membership == "ban":
            await with_retries(
                lambda: bot.ban_user(portal.mxid, mxid, reason=evt.reason or ""), what="ban"
            )

    async def _remote_resync(
        self, portal: Portal, login_id: str | None, evt: RemoteChatResync, seq: int
    ) -> None:
        info = evt.info or ChatInfo()
        await self._remote_chat_info(
            portal,
            login_id,
            RemoteChatInfoChange(
                portal.key, name=info.name, topic=info.topic, avatar_url=info.avatar_url
            ),
            seq,
        )
        client = self._client_for(portal.network, portal.key, login_id)
        await self.member_sync.apply(portal, info, client)
        await self.bridge.spaces.place(portal, info.parent, client and client.login)

    async def _remote_backfill(
        self, portal: Portal, login_id: str | None, evt: RemoteBackfill, seq: int
    ) -> None:
        await self.bridge.backfill.handle(portal, login_id, evt, seq)


#: A handler of one kind of remote event that happens in a room.
RoomEventHandler = Callable[[PortalService, Portal, str | None, Any, int], Awaitable[None]]

#: Which method handles each kind of remote event that happens in a room (the user-level
#: :class:`RemoteUserInfoChange` goes to ``_remote_user_info``). A subclass goes to its base's
#: handler; a kind with no entry is logged and dropped. tests/unit/test_remote_dispatch.py
#: checks that every kind the contract defines has its place.
ROOM_EVENT_HANDLERS: dict[type[RemoteEvent], RoomEventHandler] = {
    RemoteMessage: PortalService._remote_message,
    RemoteEdit: PortalService._remote_edit,
    RemoteRedaction: PortalService._remote_redaction,
    RemoteReaction: PortalService._remote_reaction,
    RemoteReactionRemove: PortalService._remote_reaction_remove,
    RemotePresence: PortalService._remote_presence,
    RemoteTyping: PortalService._remote_typing,
    RemoteReceipt: PortalService._remote_receipt,
    RemoteChatInfoChange: PortalService._remote_chat_info,
    RemoteMembership: PortalService._remote_membership,
    RemoteChatResync: PortalService._remote_resync,
    RemoteBackfill: PortalService._remote_backfill,
}


def room_event_handler(kind: type[RemoteEvent]) -> RoomEventHandler | None:
    """The handler of ``kind``, or of the nearest base class that has one."""
    for cls in kind.__mro__:
        handler = ROOM_EVENT_HANDLERS.get(cls)
        if handler is not None:
            return handler
    return None
