"""Matrix events in a portal room, turned into calls on the right network client.

The runtime picks the client (the sender's own login, else the portal's relay), resolves
replies/threads/edits/reactions to remote ids through the message map, and falls back where a
connector lacks a capability: an edit becomes a ``* new text`` message; a reaction or redaction
the network cannot carry is not sent. What a room refuses (its :class:`RoomCapabilities`) is
refused before the connector is called. The outcome of every message, edit, reaction and
redaction goes back to the sender's client as a message status (:mod:`.message_status`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..contract.connector import (
    EditHandler,
    MembershipHandler,
    ModeratesMessages,
    NetworkConnector,
    ReactionHandler,
    ReadReceiptHandler,
    RedactionHandler,
    RendersRelaySender,
    RoomMetaHandler,
    SendRefused,
    TypingHandler,
)
from ..contract.events import (
    MatrixEdit,
    MatrixMembership,
    MatrixMessage,
    MatrixReaction,
    MatrixReactionRemove,
    MatrixReadReceipt,
    MatrixRedaction,
    MatrixRoomMeta,
    MatrixTyping,
)
from ..database.store import LRU, MessageRow, ReactionRow
from ..matrix.encrypted_media import file_refusal
from ..matrix.fields import Relation, relation
from ..matrix.message_status import (
    KINDS,
    Reason,
    Status,
    StatusReporter,
    refused_edit,
    refused_message,
    room_capabilities,
)
from ..objects.portal import Portal
from .matrix_content import power_level_changes, to_content
from .relaying import RelayRuntime, mark_relayed, relay_sender
from .room_power import RoomPower

if TYPE_CHECKING:
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from ..metrics import Metrics
    from ..settings import BridgeSettings
    from .clients import SenderClients
    from .custom_emoji import CustomEmojis
    from .send_gate import SendGate

log = logging.getLogger("bridgekit.portal.portals")


class MatrixToRemote:
    """Sends Matrix events of portal rooms to the network clients that speak for their senders."""

    def __init__(
        self,
        *,
        store: Store,
        matrix: MatrixClient,
        metrics: Metrics,
        settings: BridgeSettings,
        senders: SenderClients,
        connector_for_ghost: Callable[[str], tuple[NetworkConnector, str] | None],
        bot_mxid: str,
        relaying: RelayRuntime,
        status: StatusReporter,
        emojis: CustomEmojis,
        gate: SendGate,
    ) -> None:
        self.store = store
        self.matrix = matrix
        self.metrics = metrics
        self.settings = settings  # the ``bridge`` section
        self.choose_client = senders.choose  # (client, relayed) for a sender in a portal
        self.clients_of = senders.clients_of  # a user's logins (of a network)
        self.connector_for_ghost = connector_for_ghost
        self.bot_mxid = bot_mxid
        self.relaying = relaying
        self.emojis = emojis
        self.power = RoomPower(matrix)  # who may mention the whole room (@room)
        self._typing: dict[tuple[str, Any], set[str]] = {}
        self._seen = LRU(100_000)
        self.status = status
        #: Held while a Matrix event goes out, so the portal's remote events wait for its ids.
        self.gate = gate

    async def _display_name(self, room_id: str, mxid: str) -> str:
        try:
            member = await self.matrix.state_store.get_member(room_id, mxid)
            if member and member.displayname:
                return str(member.displayname)
        except Exception:
            pass
        return mxid[1:].split(":", 1)[0]

    async def handle_matrix_event(
        self, portal: Portal, evt: dict[str, Any], level: int, replay: bool = False
    ) -> None:
        etype = evt["type"]
        content = evt["content"]
        if etype in ("m.room.message", "m.sticker"):
            rel = relation(content)  # checked by the router (matrix_fields.check_event)
            with self.gate.sending(portal.mxid):
                if rel.rel_type == "m.replace":
                    await self._edit(portal, evt, rel)
                else:
                    await self._message(portal, evt, replay)
        elif etype == "m.reaction":
            with self.gate.sending(portal.mxid):
                await self._reaction(portal, evt)
        elif etype == "m.room.redaction":
            with self.gate.sending(portal.mxid):
                await self._redaction(portal, evt)
        elif etype == "m.room.member":
            await self._membership(portal, evt)
        elif etype in ("m.room.name", "m.room.topic", "m.room.avatar"):
            await self._room_meta(portal, evt)
        elif etype == "m.room.power_levels" and evt.get("state_key") == "":
            await self._power_levels(portal, evt)

    def _base(self, portal: Portal, evt: dict[str, Any]) -> dict[str, Any]:
        return {
            "portal": portal.key,
            "room_id": evt["room_id"],
            "event_id": evt["event_id"],
            "sender": evt["sender"],
            "timestamp": (evt.get("origin_server_ts") or 0) / 1000,
        }

    async def _refuse(
        self,
        portal: Portal,
        evt: dict[str, Any],
        why: str,
        reason: str = Reason.NO_PERMISSION,
        status: Status = Status.FAIL,
        notice: bool = True,
    ) -> None:
        """A failed status for ``evt`` (and, for messages and edits, the notice line)."""
        await self.status.report(portal, evt, status, reason, why, notice=notice)

    async def _done(self, portal: Portal, evt: dict[str, Any]) -> None:
        await self.status.report(portal, evt, Status.SUCCESS)

    async def _failed(
        self, portal: Portal, evt: dict[str, Any], e: Exception, notice: bool
    ) -> None:
        """The connector raised: a refusal it explained, or a failure that may pass."""
        kind = KINDS.get(evt["type"], "message")
        if isinstance(evt["content"].get("m.new_content"), dict):
            kind = "edit"
        log.warning("Connector failed to send %s %s: %s", kind, evt["event_id"], e, exc_info=e)
        if isinstance(e, SendRefused):
            status = Status.RETRIABLE if e.retriable else Status.FAIL
            reason: str = e.reason
        else:
            status, reason = Status.RETRIABLE, Reason.NETWORK_ERROR
        why = f"your {kind} was not delivered: {e}"
        await self._refuse(portal, evt, why, reason, status, notice)

    async def _message(self, portal: Portal, evt: dict[str, Any], replay: bool = True) -> None:
        """Send a Matrix message to the network, once.

        A first delivery needs no database at all: the homeserver resends an event only in
        a retry of the same transaction, which the transaction table recognises, and the same
        event twice in this process is caught by ``_seen``. The mapping to the remote id is
        written in the background (group commit). After a crash, the replayed transactions
        are checked against the message table: what is mapped was delivered; anything else
        goes out again with ``maybe_sent`` so a connector that can deduplicate does.
        """
        event_id = evt["event_id"]
        seen = self._seen
        if event_id not in seen:  # the usual case: one look-up, not two (a cold cache line)
            seen[event_id] = True
            if len(seen) > seen.size:
                seen.popitem(last=False)
        elif not replay:
            return
        else:
            seen.move_to_end(event_id)
        if replay and await self.store.message_by_event(event_id):
            return  # delivered before the crash
        client, relayed = await self.choose_client(portal, evt["sender"])
        if client is None:
            await self._refuse(portal, evt, "you are not logged in and this room has no relay")
            return
        mc = await to_content(self.store, portal, evt["content"])
        if bad_file := await file_refusal(self.matrix, evt["content"]):
            await self._refuse(portal, evt, f"your message was not delivered: {bad_file}")
            return
        if evt["type"] == "m.sticker":
            mc.msgtype = "m.image"
        caps = room_capabilities(client, portal)
        why = refused_message(caps, mc)
        if why is not None:
            await self._refuse(portal, evt, f"your message was not delivered: {why[1]}", why[0])
            return
        if not caps.formatting:
            mc.html = None
        name = await self._display_name(evt["room_id"], evt["sender"])
        reply_row = reply_thread = None
        if mc.reply_to:
            reply_row = await self.store.message_by_remote(portal.network, portal.key, mc.reply_to)
            if reply_row and reply_row.thread_root and not mc.thread_root:
                root = await self._target(portal, reply_row.thread_root)
                reply_thread = root.remote_id if root else None
        msg = MatrixMessage(
            **self._base(portal, evt),
            content=mc,
            sender_name=name,
            relayed_for=evt["sender"] if relayed else None,
            reply_to_sender=reply_row.sender_remote if reply_row else None,
            reply_to_thread=reply_thread,
            raw=evt["content"],
            maybe_sent=replay,
            may_mention_room=await self.power.may_mention_room(
                evt["room_id"], evt["sender"], evt["content"]
            ),
        )
        if relayed:
            await mark_relayed(self.relaying, msg, client)
        try:
            result = await client.handle_matrix_message(msg)
        except Exception as e:
            await self._failed(portal, evt, e, notice=True)
            return
        self.metrics.events_out(portal.network)
        if self.status.events_enabled:  # a success says nothing otherwise
            await self._done(portal, evt)
        rel = relation(evt["content"])
        self.store.add_message_soon(
            MessageRow(
                network=portal.network,
                portal=portal.key,
                remote_id=(result.remote_id if result else None) or f"mx:{event_id}",
                part="",
                event_id=event_id,
                room_id=evt["room_id"],
                sender_mxid=evt["sender"],
                sender_remote=client.login.remote_id,
                ts=int(evt.get("origin_server_ts") or 0),
                thread_root=rel.event_id if rel.rel_type == "m.thread" else None,
            ),
            result.extra_ids if result else (),
        )

    async def _edit(self, portal: Portal, evt: dict[str, Any], rel: Relation) -> None:
        target = await self._target(portal, rel.event_id)
        if target is None or target.sender_mxid != evt["sender"]:
            # unknown here (or another room's), or someone editing another's message
            await self._refuse(
                portal, evt, "the edited message is not bridged", Reason.GENERIC, notice=False
            )
            return
        client, relayed = await self.choose_client(portal, evt["sender"])
        new = evt["content"].get("m.new_content")
        if client is None or not isinstance(new, dict):
            await self._refuse(portal, evt, "your edit was not delivered", notice=False)
            return
        caps = room_capabilities(client, portal)
        why = refused_edit(caps, evt, target)
        if why is not None:
            await self._refuse(portal, evt, f"your edit was not delivered: {why[1]}", why[0])
            return
        mc = await to_content(self.store, portal, new)
        if not caps.formatting:
            mc.html = None
        if isinstance(client, EditHandler) and (
            not relayed or isinstance(client, RendersRelaySender)
        ):
            edit = MatrixEdit(
                **self._base(portal, evt),
                target_id=target.remote_id,
                content=mc,
                target_part=target.part,
                may_mention_room=await self.power.may_mention_room(
                    evt["room_id"], evt["sender"], new
                ),
            )
            if relayed:  # the network shows the sender: the relayed message can be edited
                edit.relayed_for = evt["sender"]
                edit.relay_sender = await relay_sender(self.relaying, evt["room_id"], evt["sender"])
            try:
                await client.handle_matrix_edit(edit)
            except Exception as e:
                await self._failed(portal, evt, e, notice=True)
                return
            await self._done(portal, evt)
            return
        # Fallback: the network has no edits, so the correction is a new message.
        if self.settings.edit_fallback:
            fallback = dict(new)
            fallback["body"] = f"* {mc.body}"
            if mc.html:
                fallback["formatted_body"] = f"* {mc.html}"
            fallback.pop("m.relates_to", None)
            await self._message(portal, {**evt, "content": fallback})
        else:
            await self._refuse(
                portal, evt, "edits are not bridged here", Reason.UNSUPPORTED, notice=False
            )

    async def _target(self, portal: Portal, event_id: str | None) -> MessageRow | None:
        """The bridged message ``event_id`` names, if it is one of this portal's: an edit,
        reaction, reply or redaction in one room must never reach another room's chat."""
        if not event_id:
            return None
        return await self.store.message_in_portal(portal.network, portal.key, event_id)

    async def _reaction(self, portal: Portal, evt: dict[str, Any]) -> None:
        rel = relation(evt["content"])
        key = rel.key
        target = await self._target(portal, rel.event_id)
        if target is None or key is None:
            await self._refuse(
                portal, evt, "the message is not bridged", Reason.GENERIC, notice=False
            )
            return
        client, relayed = await self.choose_client(portal, evt["sender"])
        if client is None or relayed or not isinstance(client, ReactionHandler):
            await self._refuse(
                portal,
                evt,
                "reactions are not bridged for you here",
                Reason.UNSUPPORTED,
                notice=False,
            )
            return
        caps = room_capabilities(client, portal)
        if caps.read_only or not caps.reactions:
            why = caps.read_only_reason if caps.read_only else "reactions are not allowed here"
            reason = Reason.NO_PERMISSION if caps.read_only else Reason.UNSUPPORTED
            await self._refuse(portal, evt, why, reason, notice=False)
            return
        reaction = MatrixReaction(**self._base(portal, evt), target_id=target.remote_id, key=key)
        emoji = await self.emojis.by_mxc(portal.network, key)  # a network's custom emoji
        if emoji is not None:
            reaction.emoji_id, reaction.emoji_name = emoji.id, emoji.name
        try:
            result = await client.handle_matrix_reaction(reaction)
        except Exception as e:
            await self._failed(portal, evt, e, notice=False)
            return
        await self._done(portal, evt)
        await self.store.add_reaction(
            ReactionRow(
                portal.network,
                portal.key,
                target.remote_id,
                client.login.remote_id,
                key,
                evt["event_id"],
                evt["room_id"],
                result.remote_id if result else None,
            )
        )

    async def _redaction(self, portal: Portal, evt: dict[str, Any]) -> None:
        redacts = evt.get("redacts") or evt["content"].get("redacts")
        if not isinstance(redacts, str):
            return
        client, relayed = await self.choose_client(portal, evt["sender"])
        if client is None:
            return
        caps = room_capabilities(client, portal)
        msg = await self._target(portal, redacts)
        if msg is not None:
            by_moderator = msg.sender_mxid != evt["sender"]
            if by_moderator and not isinstance(client, ModeratesMessages):
                return  # a moderator's redaction: nothing to send
            if relayed and not isinstance(client, RendersRelaySender):
                return  # the relay's message carries a label, not the sender: left as is
            if not isinstance(client, RedactionHandler) or not caps.redactions:
                await self._refuse(
                    portal,
                    evt,
                    "deleting messages is not bridged here",
                    Reason.UNSUPPORTED,
                    notice=False,
                )
                return
            if caps.read_only:
                await self._refuse(portal, evt, caps.read_only_reason, notice=False)
                return
            try:
                await client.handle_matrix_redaction(
                    MatrixRedaction(
                        **self._base(portal, evt),
                        target_id=msg.remote_id,
                        relayed_for=evt["sender"] if relayed else None,
                        by_moderator=by_moderator,
                    )
                )
            except Exception as e:
                await self._failed(portal, evt, e, notice=False)
                return
            await self.store.delete_message(redacts)
            await self._done(portal, evt)
            return
        if relayed:
            return  # relayed users' reactions are not bridged, so neither are removals
        reaction = await self.store.reaction_in_portal(portal.network, portal.key, redacts)
        # Only its sender's own removal: a moderator redacting it would otherwise remove,
        # through their own login, a reaction they never made (and leave the sender's).
        if (
            reaction is not None
            and isinstance(client, ReactionHandler)
            and reaction.sender_remote == client.login.remote_id
        ):
            if caps.read_only:
                await self._refuse(portal, evt, caps.read_only_reason, notice=False)
                return
            emoji = await self.emojis.by_mxc(portal.network, reaction.key)
            try:
                await client.handle_matrix_reaction_remove(
                    MatrixReactionRemove(
                        **self._base(portal, evt),
                        target_id=reaction.target_id,
                        key=reaction.key,
                        emoji_id=emoji.id if emoji else None,
                    )
                )
            except Exception as e:
                await self._failed(portal, evt, e, notice=False)
                return
            await self.store.delete_reaction(redacts)
            await self._done(portal, evt)

    async def _membership(self, portal: Portal, evt: dict[str, Any]) -> None:
        content = evt["content"]
        target = evt.get("state_key")
        membership = content.get("membership")
        if not isinstance(target, str) or not isinstance(membership, str):
            return
        found = self.connector_for_ghost(target)
        if membership == "leave" and target != evt["sender"]:
            membership = "kick"
        change = MatrixMembership(
            **self._base(portal, evt),
            target=target,
            target_remote=found[1] if found else None,
            membership=membership,
            reason=content.get("reason"),
        )
        if membership in ("kick", "ban") and found is None:
            # A Matrix user put out of the room leaves the remote chat too: their own login
            # hears of it (as of their own leave), whoever the moderator is.
            for own in self.clients_of(target, portal.network):
                if own.is_in_portal(portal.key) and isinstance(own, MembershipHandler):
                    await own.handle_matrix_membership(change)
        client, relayed = await self.choose_client(portal, evt["sender"])
        if client is None or relayed or not isinstance(client, MembershipHandler):
            return
        await client.handle_matrix_membership(change)

    async def _room_meta(self, portal: Portal, evt: dict[str, Any]) -> None:
        client, relayed = await self.choose_client(portal, evt["sender"])
        if client is None or relayed or not isinstance(client, RoomMetaHandler):
            return
        content = evt["content"]
        change = MatrixRoomMeta(**self._base(portal, evt))
        if evt["type"] == "m.room.name":
            change.name = content.get("name")
        elif evt["type"] == "m.room.topic":
            change.topic = content.get("topic")
        else:
            change.avatar_url = content.get("url")
        # The room shows the new value now: the network's report of the same change is then
        # no change (no second state event), and a value the network refuses, queued back by
        # the connector, restores the room.
        shown = {
            attr: value
            for attr, value in (("name", change.name), ("topic", change.topic))
            if isinstance(value, str) and value != getattr(portal, attr)
        }
        if shown:
            for attr, value in shown.items():
                setattr(portal, attr, value)
            await portal.save()
        await client.handle_matrix_room_meta(change)

    async def _power_levels(self, portal: Portal, evt: dict[str, Any]) -> None:
        """Only the users whose level changed go to the network (from ``prev_content``)."""
        changed = power_level_changes(evt, self.bot_mxid)
        if not changed:
            return
        client, relayed = await self.choose_client(portal, evt["sender"])
        if client is None or relayed or not isinstance(client, RoomMetaHandler):
            return
        change = MatrixRoomMeta(**self._base(portal, evt), power_levels=changed)
        await client.handle_matrix_room_meta(change)

    async def handle_matrix_typing(self, portal: Portal, typing_users: list[str]) -> None:
        """Forward only changes: Matrix sends the full list of typing users each time."""
        typing = set(typing_users)
        key = (portal.network, portal.key)
        previous = self._typing.get(key, set())
        self._typing[key] = typing
        for user_id in typing ^ previous:
            for client in self.clients_of(user_id, portal.network):
                if isinstance(client, TypingHandler) and client.is_in_portal(portal.key):
                    await client.handle_matrix_typing(
                        MatrixTyping(portal.key, portal.mxid or "", user_id, user_id in typing)
                    )

    async def handle_matrix_receipt(self, portal: Portal, user_id: str, event_id: str) -> None:
        row = await self._target(portal, event_id)
        remote_id = row.remote_id if row else None
        for client in self.clients_of(user_id, portal.network):
            if isinstance(client, ReadReceiptHandler) and client.is_in_portal(portal.key):
                await client.handle_matrix_read_receipt(
                    MatrixReadReceipt(portal.key, portal.mxid or "", user_id, event_id, remote_id)
                )
