"""MUC (XEP-0045) rooms as the component sees them: several Matrix users, one listener.

Every Matrix user in a portal is an occupant of its MUC through the component, under their own
nick. The room sends each of those occupants a copy of everything; the bridge reads only the
copy addressed to the room's *listener* (the first of its occupants to join; another takes over
when it leaves), so nothing is bridged twice. Presences of the other occupants become ghosts
joining and leaving, with affiliations and roles as power levels; kicks and bans as kicks and
bans. A Matrix user whose own occupant is kicked, banned or refused (members-only, password)
leaves the portal room too (``follow_room_access``); without that setting the portal is told.

The room state (occupants, our occupancies, the listener) is in :mod:`bridges.xmpp.muc_room`;
what Matrix users change in a room through their occupant (muc#admin, muc#owner) in
:mod:`bridges.xmpp.muc_admin`, mixed in here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from slixmpp import JID, Presence
from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.contract.events import (
    ChatInfo,
    EventSender,
    MessageContent,
    RemoteChatResync,
    RemoteMembership,
    RemoteMessage,
    RemotePresence,
)

from .jid import clean_text
from .muc_admin import MucAdmin
from .muc_room import (
    RESOURCE,
    JoinError,
    Occupant,
    Room,
    matrix_presence,
    nick_candidates,
    power_of,
)
from .occupants import OCCUPANT_ID_NS, by_nick, by_occupant_id, occupant_id_of
from .stanza_errors import stanza_error

if TYPE_CHECKING:
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.muc")

MUC_USER_NS = "http://jabber.org/protocol/muc#user"


class MucManager(MucAdmin):
    """The component's MUC occupancies: joins, leaves and the presences rooms send."""

    def __init__(self, connector: XMPPConnector) -> None:
        self.connector = connector
        self.rooms: dict[str, Room] = {}

    def room(self, jid: str) -> Room:
        room = self.rooms.get(jid)
        if room is None:
            room = self.rooms[jid] = Room(jid)
        return room

    def reset(self) -> None:
        """The component went away: every occupancy is gone with it."""
        for room in self.rooms.values():
            for fut in room.joins.values():
                if not fut.done():
                    fut.set_exception(JoinError("remote-server-not-found", "disconnected"))
        self.rooms.clear()

    # -- joining and leaving ------------------------------------------------------------------

    def _send_join(self, puppet: str, room: Room, nick: str, history: int) -> None:
        xmpp = self.connector.component
        pres = xmpp.make_presence(pto=f"{room.jid}/{nick}", pfrom=f"{puppet}/{RESOURCE}")
        pres.enable("muc_join")
        pres["muc_join"]["history"]["maxstanzas"] = str(history)
        pres.send()

    async def join(self, login_id: str, puppet: str, room_jid: str, nick: str) -> str:
        """Join ``room_jid`` as ``puppet``; returns the nick the room accepted."""
        room = self.room(room_jid)
        if room.joined(login_id):
            return room.nick_of[login_id]
        pending = room.joins.get(login_id)
        if pending is not None:
            return await asyncio.shield(pending)
        if not self.connector.component.online.is_set():
            # The presence would go nowhere and no answer come: join once it is back.
            raise JoinError("remote-server-not-found", "disconnected")
        if room.occupant_ids is None:  # asked before joining: the join's presences carry them
            room.occupant_ids = await self._offers_occupant_ids(room_jid)
            if room.joined(login_id):  # another call joined meanwhile
                return room.nick_of[login_id]
            pending = room.joins.get(login_id)
            if pending is not None:
                return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        timeout = float(self.connector.setting("join_timeout"))
        history = int(self.connector.setting("muc_history"))
        if room.listener is None or room.listener not in room.nick_of:
            room.listener = login_id
        if room.listener == login_id:
            self.connector.catchup.joining(login_id, room_jid)
        error: JoinError | None = None
        fut: asyncio.Future[str] | None = None
        try:
            for candidate in nick_candidates(nick):
                fut = loop.create_future()
                room.joins[login_id] = fut
                room.nick_of[login_id] = candidate
                self._send_join(puppet, room, candidate, history)
                try:
                    joined = await asyncio.wait_for(asyncio.shield(fut), timeout)
                    if room.listener == login_id:
                        self.connector.spawn(self.connector.sync_room_info(room_jid))
                    return joined
                except JoinError as e:
                    error = e
                    if e.condition != "conflict":
                        break
                except TimeoutError:
                    error = JoinError("remote-server-timeout", "the room did not answer")
                    break
            room.joins.pop(login_id, None)
            room.drop(login_id)
            raise error or JoinError("conflict")
        finally:
            room.joins.pop(login_id, None)
            if fut is not None and not fut.done():
                # Others wait on this join (above): it ends for them too, else they would
                # wait for ever (it timed out, or this call was cancelled: a stop, a logout).
                fut.set_exception(error or JoinError("remote-server-not-found", "given up"))
                fut.exception()  # retrieved: nobody may be waiting

    async def _offers_occupant_ids(self, room_jid: str) -> bool:
        identity = self.connector.component.plugin["bridgekit_identity"]
        try:
            info = await identity.fetch_info(room_jid)
        except (IqError, IqTimeout):
            return False
        return OCCUPANT_ID_NS in set(info["features"])

    async def sender_id(self, room: Room, nick: str, xml: object | None) -> str:
        """The ghost for ``nick``'s stanza (see :mod:`bridges.xmpp.occupants`)."""
        occupant = room.occupants.get(nick)
        occ_id = occupant_id_of(xml) if room.occupant_ids and xml is not None else None
        if occupant is not None and (
            occ_id is None
            or "/" not in occupant.remote_id  # a real JID
            or occupant.remote_id == by_occupant_id(room.jid, occ_id)
        ):
            return occupant.remote_id
        if occ_id:  # e.g. an archived message of someone who had this nick before
            return by_occupant_id(room.jid, occ_id)
        return by_nick(room.jid, nick, await self.connector.idmap.occupancy(room.jid, nick))

    def leave(self, login_id: str, puppet: str, room_jid: str, status: str = "") -> None:
        room = self.rooms.get(room_jid)
        if room is None or login_id not in room.nick_of:
            return
        nick = room.nick_of[login_id]
        room.drop(login_id)
        if self.connector.component.online.is_set():
            pres = self.connector.component.make_presence(
                pto=f"{room_jid}/{nick}", pfrom=f"{puppet}/{RESOURCE}", ptype="unavailable"
            )
            if status:
                pres["status"] = clean_text(status)[:200]
            pres.send()

    # -- presences from rooms -----------------------------------------------------------------

    async def handle_presence(self, pres: Presence, login_id: str) -> None:
        frm = pres["from"]
        room = self.rooms.get(frm.bare)
        if room is None:
            return
        nick = frm.resource
        ptype = pres["type"]
        if ptype == "error":
            condition, text = stanza_error(pres)
            fut = room.joins.get(login_id)
            if fut is not None and not fut.done():
                fut.set_exception(JoinError(condition, text))
                return
            current = room.nick_of.get(login_id)
            client = self.connector.clients.get(login_id)
            if current and nick != current and client is not None:  # a refused nick change
                await self.connector.bridge.notify_user(
                    client.login.user_mxid,
                    f"The XMPP room {room.jid} refused the nick {nick} ({condition}): "
                    f"you are still {current} there.",
                )
            return
        x = pres.xml.find(f"{{{MUC_USER_NS}}}x")
        if x is None:
            return  # not a MUC presence
        codes = {s.get("code", "") for s in x.findall(f"{{{MUC_USER_NS}}}status")}
        item = x.find(f"{{{MUC_USER_NS}}}item")
        attrs = item.attrib if item is not None else {}
        reason_el = item.find(f"{{{MUC_USER_NS}}}reason") if item is not None else None
        reason = clean_text(reason_el.text) if reason_el is not None and reason_el.text else None
        is_self = "110" in codes or (room.nick_of.get(login_id) == nick and login_id in room.joins)
        if is_self:
            if x.find(f"{{{MUC_USER_NS}}}destroy") is not None:
                attrs = {**attrs, "destroy": "1"}
            await self._self_presence(room, login_id, nick, ptype, codes, attrs, reason)
            return
        if nick in room.ours or login_id != room.listener or not nick:
            return
        real = JID(attrs.get("jid", "")) if attrs.get("jid") else None
        if real is not None and real.domain == self.connector.component_jid:
            return  # a Matrix user of this bridge (seen through a non-anonymous room)
        await self._occupant_presence(room, nick, ptype, codes, attrs, real, reason, pres)

    async def _self_presence(
        self,
        room: Room,
        login_id: str,
        nick: str,
        ptype: str,
        codes: set[str],
        attrs: dict[str, str],
        reason: str | None,
    ) -> None:
        if ptype != "unavailable":
            room.nick_of[login_id] = nick
            room.ours[nick] = login_id
            fut = room.joins.get(login_id)
            if fut is not None and not fut.done():
                fut.set_result(nick)
                if room.listener == login_id:
                    # Everyone else's presence came first: occupants who left while the
                    # bridge was away (stopped, disconnected) have their ghosts leave.
                    info = ChatInfo(members=room.members(), members_complete=True)
                    info.parent = await self.connector.muc_spaces.space_of(room.jid)
                    await self.connector.queue(None, RemoteChatResync(room.key, info=info))
            return
        if "303" in codes and attrs.get("nick"):
            room.ours.pop(nick, None)
            room.nick_of[login_id] = attrs["nick"]
            room.ours[attrs["nick"]] = login_id
            renamed = self.connector.clients.get(login_id)
            if renamed is not None:
                await renamed.nick_taken(room.jid, attrs["nick"])
            return
        room.drop(login_id)
        client = self.connector.clients.get(login_id)
        reasons = {
            "301": "was banned from",
            "307": "was kicked from",
            "321": "was removed from",  # an affiliation change in a members-only room
            "322": "was removed from",  # the room became members-only
        }
        what = next((reasons[c] for c in sorted(codes) if c in reasons), None)
        if client is not None and what and "destroy" not in attrs:
            if await client.kept_out(room.jid, what, reason):
                return  # out of the portal room too, told in the management room
        # Banned, removed as a non-member, or the room is gone: stop rejoining it. A kick or a
        # server shutdown (332) only ends this occupancy: it is joined again when needed.
        final = bool(codes & {"301", "321", "322"}) or "destroy" in attrs
        if final and client is not None:
            await client.forget_room(room.jid)
        text = f"{client.login.user_mxid} {what} the XMPP room" if client and what else ""
        if "destroy" in attrs:
            text = "The XMPP room was destroyed"
        if text:
            text += f": {reason}" if reason else "."
            await self.connector.queue(
                None,
                RemoteMessage(
                    room.key, None, id="", content=MessageContent(text, msgtype="m.notice")
                ),
            )

    async def _occupant_presence(
        self,
        room: Room,
        nick: str,
        ptype: str,
        codes: set[str],
        attrs: dict[str, str],
        real: JID | None,
        reason: str | None,
        pres: Presence,
    ) -> None:
        known = room.occupants.get(nick)
        occ_id = occupant_id_of(pres.xml) if room.occupant_ids else None
        if known is not None:
            remote_id = known.remote_id
        elif real is not None:
            remote_id = real.bare
        else:
            remote_id = await self.sender_id(room, nick, pres.xml)
        sender = EventSender(remote_id, name=nick)
        if ptype == "unavailable":
            room.occupants.pop(nick, None)
            if real is None and not occ_id:  # keyed by nick: the next holder is someone else
                await self.connector.idmap.next_occupancy(room.jid, nick)
            new_nick = clean_text(attrs.get("nick", ""))
            if "303" in codes and (real is not None or occ_id) and new_nick:
                # A nick change: the same ghost stays, under its new name (a presence event
                # carries the name; the join that follows finds the ghost already there).
                renamed = EventSender(remote_id, name=new_nick)
                presence = matrix_presence(known.show if known else "")
                await self.connector.queue(
                    None, RemotePresence(room.key, renamed, presence=presence)
                )
                return
            membership = "ban" if "301" in codes else "kick" if "307" in codes else "leave"
            await self.connector.queue(
                None,
                RemoteMembership(
                    room.key, sender, target=remote_id, membership=membership, reason=reason
                ),
            )
            return
        affiliation = attrs.get("affiliation", "none")
        role = attrs.get("role", "participant")
        show = pres["show"] or ""
        level = power_of(affiliation, role)
        occupant = Occupant(nick, remote_id, affiliation, role, show)
        room.occupants[nick] = occupant
        status = clean_text(pres["status"])[:200] or None
        occupant.status = status
        presence = RemotePresence(
            room.key, sender, presence=matrix_presence(show), status_msg=status
        )
        if known is None:
            # Always news (a ghost nobody set reads "offline"), and queued before the join: set
            # while the ghost is in no room (the runtime's _remote_presence says why).
            await self.connector.queue(None, presence)
        if known is None or power_of(known.affiliation, known.role) != level:
            await self.connector.queue(
                None,
                RemoteMembership(
                    room.key,
                    sender,
                    target=remote_id,
                    membership="join",
                    power_level=level if (known is not None or level) else None,
                ),
            )
        if known is not None and (known.show != show or known.status != status):
            await self.connector.queue(None, presence)
