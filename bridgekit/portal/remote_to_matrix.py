"""Remote events into portal rooms: each kind through its handler (:data:`ROOM_EVENT_HANDLERS`).

Every remote event reaches :meth:`RemoteToMatrix.handle_remote_event` from the outbox, one portal
at a time in order. Sends are retried until they succeed (a homeserver outage only delays them)
and use a transaction id derived from the outbox sequence number, so a send retried after a
crash is deduplicated by the homeserver rather than posted twice.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from mautrix.appservice import IntentAPI
from mautrix.errors import IntentError, MatrixRequestError
from mautrix.types import PresenceState

from ..contract.events import (
    ChatInfo,
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
from ..database.store import MessageRow, ReactionRow
from ..matrix.client import send_event, with_retries
from ..matrix.fetcher import FetchError
from ..objects.portal import Portal
from ..outbox.coalesce import merge_contents
from . import message_parts
from .clients import client_for

if TYPE_CHECKING:
    from ..contract.connector import NetworkClient
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from ..metrics import Metrics
    from .custom_emoji import CustomEmojis
    from .member_sync import MemberSync
    from .presence import PresenceKeeper
    from .puppets import Puppets
    from .rooms import HistoryFiller, Rooms, SpacePlacer
    from .send_gate import SendGate

log = logging.getLogger("bridgekit.portal.portals")

#: How far ahead of our clock a network's timestamp may be (clock skew) and still be used.
FUTURE_SLACK = 300.0


def matrix_ts(ts: float | None) -> int | None:
    """A network's timestamp (seconds) as a Matrix ``ts`` in ms, or None for the homeserver's
    own time: it is untrusted, and one before 1970 is refused by the homeserver (losing the
    message), one far ahead would date the event (and sort the room) years from now, and
    NaN or infinity cannot be made an integer at all."""
    if ts is None or not math.isfinite(ts) or ts <= 0 or ts > time.time() + FUTURE_SLACK:
        return None
    return int(ts * 1000)


class RemoteToMatrix:
    """Sends remote events into portal rooms, as ghosts, double puppets or the bot."""

    #: Set by :meth:`~.portals.PortalService.attach` (made after the portal services).
    backfill: HistoryFiller
    spaces: SpacePlacer

    def __init__(
        self,
        *,
        store: Store,
        matrix: MatrixClient,
        clients: Mapping[str, NetworkClient],
        metrics: Metrics,
        presence: PresenceKeeper,
        ghost_mxid: Callable[[str, str], str],
        puppets: Puppets,
        rooms: Rooms,
        member_sync: MemberSync,
        emojis: CustomEmojis,
        gate: SendGate,
    ) -> None:
        self.store = store
        self.matrix = matrix
        self.clients = clients  # the live map of loaded logins
        self.metrics = metrics
        self.presence = presence
        self.ghost_mxid = ghost_mxid
        self.puppets = puppets
        self.rooms = rooms
        self.member_sync = member_sync
        self.emojis = emojis
        #: Held while a Matrix event goes out: a portal's remote events wait for its ids.
        self.gate = gate

    # -- remote -> Matrix ----------------------------------------------------------------------

    async def handle_remote_event(
        self, network: str, login_id: str | None, evt: RemoteEvent, seq: int
    ) -> None:
        if isinstance(evt, RemoteUserInfoChange):  # the user's, not a room's
            await self.puppets.remote_user_info(network, login_id, evt)
            return
        handler = room_event_handler(type(evt))
        if handler is None:  # a kind the runtime does not know (a connector's own subclass)
            log.error("No handler for remote event kind %r from %s: dropped", evt.kind, network)
            return
        needs_room = not isinstance(evt, RemoteTyping | RemoteReceipt | RemotePresence)
        if needs_room:
            portal = await self.rooms.get_or_create(network, evt.portal, login_id)
        else:
            portal = await self.store.get_portal(network, evt.portal)
        if portal is None or not portal.mxid:
            return
        if self.backfill.pending:  # history due before this (bridgekit/portal/backfill.py)
            await self.backfill.due(portal, login_id)
        await self.gate.wait_idle(portal.mxid)  # ids of what Matrix is sending
        await handler(self, portal, login_id, evt, seq)

    async def handle_remote_messages(
        self, network: str, login_id: str | None, evts: list[RemoteMessage], seq: int
    ) -> None:
        """Several queued lines of one sender, sent as one Matrix event (see outbox/coalesce.py)."""
        portal = await self.rooms.get_or_create(network, evts[0].portal, login_id)
        if portal is None or not portal.mxid:
            return
        if self.backfill.pending:  # history due before these (bridgekit/portal/backfill.py)
            await self.backfill.due(portal, login_id)
        await self.gate.wait_idle(portal.mxid)
        # Echoes and duplicate deliveries drop out (one lookup for the batch), and so does a
        # line delivered twice within the batch.
        seen = await self.store.known_remote_ids(
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
        intent = await self.puppets.sender_intent(portal, first.sender, login_id)
        content = await message_parts.matrix_content(
            self, portal, merge_contents([e.content for e in fresh])
        )
        event_id = await self._send(
            intent, portal, "m.room.message", content, f"bk{seq}", first.timestamp
        )
        self.metrics.merged_lines(len(fresh))
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
        ts_ms = matrix_ts(ts)
        assert portal.mxid
        # Encrypted once, before the retries: a retry resends the same ciphertext (the
        # homeserver dedupes by txn_id, and the room key's ratchet moves on only once).
        etype, content = await self.matrix.prepare_event(portal.mxid, etype, content)
        event_id = await with_retries(
            lambda: send_event(intent, portal.mxid, etype, content, txn_id, ts_ms),
            what=f"sending {etype} to {portal.mxid}",
        )
        self.metrics.events_out("matrix")
        return str(event_id)

    async def remote_message(
        self, portal: Portal, login_id: str | None, evt: RemoteMessage, seq: int | str
    ) -> None:
        store = self.store
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
        await self.store.add_message(
            MessageRow(
                network=portal.network,
                portal=portal.key,
                remote_id=remote_id,
                part=part,
                event_id=event_id,
                room_id=portal.mxid or "",
                sender_mxid=str(intent.mxid),
                sender_remote=evt.sender.remote_id if evt.sender else None,
                ts=matrix_ts(evt.timestamp) or int(time.time() * 1000),
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
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id)
        new = await message_parts.matrix_content(self, portal, evt.content)
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
        target = await self.store.message_by_remote(portal.network, portal.key, evt.target_id)
        sender = evt.sender.remote_id if evt.sender else ""
        if target is None:
            return
        key, extra = await self.emojis.reaction_key(portal.network, evt)
        if await self.store.get_reaction(portal.network, portal.key, evt.target_id, sender, key):
            return
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id)
        content = {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": target.event_id, "key": key},
            **extra,
        }
        event_id = await self._send(
            intent, portal, "m.reaction", content, f"bk{seq}", evt.timestamp
        )
        await self.store.add_reaction(
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
        row = await self.store.get_reaction(portal.network, portal.key, evt.target_id, sender, key)
        if row is None:
            return
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id)
        assert portal.mxid
        await with_retries(lambda: intent.redact(portal.mxid, row.event_id), what="unreacting")
        await self.store.delete_reaction(row.event_id)

    async def _remote_presence(
        self, portal: Portal, login_id: str | None, evt: RemotePresence, seq: int
    ) -> None:
        # Presence belongs to the user, not the room: it does not join the ghost. A connector
        # that knows a newcomer's presence queues it before the join, so that the ghost's
        # first presence is set while no one can see it. Synapse (1.14x) has a race there: a
        # read of a user's presence that misses its in-memory cache stores the default
        # ("offline") when the database read returns, over an update made meanwhile, and its
        # own join handling reads the presence of whoever joins.
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id, join=False)
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
        if evt.sender is not None and intent.mxid == self.ghost_mxid(
            evt.sender.remote_id, portal.network
        ):  # a ghost (not a double puppet: real users' clients keep their own presence)
            self.presence.set(intent.mxid, evt.presence, evt.status_msg, portal.network)

    async def _remote_typing(
        self, portal: Portal, login_id: str | None, evt: RemoteTyping, seq: int
    ) -> None:
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id)
        assert portal.mxid
        await intent.set_typing(portal.mxid, timeout=evt.timeout_ms if evt.typing else 0)

    async def _remote_receipt(
        self, portal: Portal, login_id: str | None, evt: RemoteReceipt, seq: int
    ) -> None:
        target = await self.store.message_by_remote(portal.network, portal.key, evt.last_read_id)
        if target is None:
            return
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id)
        assert portal.mxid
        await intent.mark_read(portal.mxid, target.event_id)

    async def _remote_chat_info(
        self, portal: Portal, login_id: str | None, evt: RemoteChatInfoChange, seq: int
    ) -> None:
        intent = await self.puppets.sender_intent(portal, evt.sender, login_id)
        bot = self.matrix.bot
        assert portal.mxid and bot is not None
        for attr, setter in (("name", "set_room_name"), ("topic", "set_room_topic")):
            value = getattr(evt, attr)
            if value is None or value == getattr(portal, attr):
                continue
            try:
                await with_retries(
                    lambda s=setter, v=value: getattr(intent, s)(portal.mxid, v), what=attr
                )
            except (MatrixRequestError, IntentError):  # the ghost lacks power: the bot does
                await with_retries(
                    lambda s=setter, v=value: getattr(bot, s)(portal.mxid, v), what=attr
                )
            setattr(portal, attr, value)
        if evt.joinable is not None and not portal.is_dm and not portal.plumbed:
            await self.rooms.set_join_rule(portal, "public" if evt.joinable else "invite")
        if evt.avatar_url and evt.avatar_url != portal.avatar_url:
            try:
                mxc = await self.puppets.avatar_mxc(evt.avatar_url)
            except FetchError as e:
                log.info("Room avatar of %s not copied: %s", portal.key, e)
            else:
                await with_retries(
                    lambda: bot.set_room_avatar(portal.mxid, mxc), what="room avatar"
                )
                portal.avatar_url = evt.avatar_url
        await portal.save()

    async def _remote_membership(
        self, portal: Portal, login_id: str | None, evt: RemoteMembership, seq: int
    ) -> None:
        client = client_for(self.clients, portal.network, portal.key, login_id)
        assert portal.mxid
        mxid = self.ghost_mxid(evt.target, portal.network)
        if evt.membership in ("join", "leave", "kick", "ban"):  # a drip-feed of an older list
            self.member_sync.departed(portal, evt.target, left=evt.membership != "join")
        if evt.membership == "join":
            await self.puppets.ghost_intent(portal.network, evt.target, client, portal)
            if evt.power_level is not None:
                await self.member_sync.set_level(portal, evt.target, evt.power_level)
            return
        if evt.power_level is not None and evt.membership == "power":
            await self.member_sync.set_level(portal, evt.target, evt.power_level)
            return
        intent = self.matrix.intent(mxid)
        bot = self.matrix.bot
        assert bot is not None
        if evt.membership in ("leave", "kick", "ban"):
            self.presence.forget(mxid)  # offline once the homeserver's timeout runs
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
        client = client_for(self.clients, portal.network, portal.key, login_id)
        await self.member_sync.apply(portal, info, client)
        await self.spaces.place(portal, info.parent, client and client.login)

    async def _remote_backfill(
        self, portal: Portal, login_id: str | None, evt: RemoteBackfill, seq: int
    ) -> None:
        await self.backfill.handle(portal, login_id, evt, seq)


#: A handler of one kind of remote event that happens in a room.
RoomEventHandler = Callable[[RemoteToMatrix, Portal, str | None, Any, int], Awaitable[None]]

#: Which method handles each kind of remote event that happens in a room (the user-level
#: :class:`RemoteUserInfoChange` goes to :meth:`.Puppets.remote_user_info`). A subclass goes to
#: its base's handler; a kind with no entry is logged and dropped.
#: tests/unit/test_remote_dispatch.py checks that every kind the contract defines has its place.
ROOM_EVENT_HANDLERS: dict[type[RemoteEvent], RoomEventHandler] = {
    RemoteMessage: RemoteToMatrix.remote_message,
    RemoteEdit: RemoteToMatrix._remote_edit,
    RemoteRedaction: RemoteToMatrix._remote_redaction,
    RemoteReaction: RemoteToMatrix._remote_reaction,
    RemoteReactionRemove: RemoteToMatrix._remote_reaction_remove,
    RemotePresence: RemoteToMatrix._remote_presence,
    RemoteTyping: RemoteToMatrix._remote_typing,
    RemoteReceipt: RemoteToMatrix._remote_receipt,
    RemoteChatInfoChange: RemoteToMatrix._remote_chat_info,
    RemoteMembership: RemoteToMatrix._remote_membership,
    RemoteChatResync: RemoteToMatrix._remote_resync,
    RemoteBackfill: RemoteToMatrix._remote_backfill,
}


def room_event_handler(kind: type[RemoteEvent]) -> RoomEventHandler | None:
    """The handler of ``kind``, or of the nearest base class that has one."""
    for cls in kind.__mro__:
        handler = ROOM_EVENT_HANDLERS.get(cls)
        if handler is not None:
            return handler
    return None
