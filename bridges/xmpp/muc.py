"""MUC (XEP-0045) rooms as the component sees them: several Matrix users, one listener.

Every Matrix user in a portal is an occupant of its MUC through the component, under their own
nick. The room sends each of those occupants a copy of everything; the bridge reads only the
copy addressed to the room's *listener* (the first of its occupants to join; another takes over
when it leaves), so nothing is bridged twice. Presences of the other occupants become ghosts
joining and leaving, with affiliations and roles as power levels; kicks and bans as kicks and
bans. A Matrix user whose own occupant is kicked, banned or refused (members-only, password)
leaves the portal room too (``follow_room_access``); without that setting the portal is told.

The other way, a Matrix user's occupant acts for them: power levels given to Matrix users who
are occupants become affiliations (100: owner, 50: admin, or moderator where the acting
occupant may not name admins), and a new room name goes into the room's configuration form.
Where the room refuses, the portal gets a notice saying so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slixmpp import JID, Presence
from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.contract.events import (
    ChatInfo,
    ChatMember,
    EventSender,
    MessageContent,
    PortalKey,
    RemoteChatResync,
    RemoteMembership,
    RemoteMessage,
    RemotePresence,
)

from .jid import clean_text, safe_nick
from .occupants import OCCUPANT_ID_NS, by_nick, by_occupant_id, occupant_id_of

if TYPE_CHECKING:
    from .connector import XMPPConnector

log = logging.getLogger("bridgekit.xmpp.muc")

MUC_USER_NS = "http://jabber.org/protocol/muc#user"
MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"
MUC_OWNER_NS = "http://jabber.org/protocol/muc#owner"
DATA_NS = "jabber:x:data"
RESOURCE = "bridgekit"
AFFILIATION_POWER = {"owner": 100, "admin": 50}


STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def stanza_error(stanza: object) -> tuple[str, str]:
    """(condition, text) of an error stanza as the server sent it.

    Read from the XML: on a component stream the ``<error>`` is in the component namespace,
    which slixmpp's ``stanza["error"]`` does not look in (it answers "feature-not-implemented"
    for every error, so a nick conflict would not look like one).
    """
    xml = getattr(stanza, "xml", None)
    for error in xml.findall("{*}error") if xml is not None else []:
        for el in error:
            if (
                isinstance(el.tag, str)
                and el.tag.startswith(f"{{{STANZAS_NS}}}")
                and not (el.tag.endswith("}text"))
            ):
                text = error.findtext(f"{{{STANZAS_NS}}}text")
                return el.tag.split("}", 1)[1], clean_text(text or "")[:200]
    return "undefined-condition", ""


def error_condition(stanza: object) -> str:
    """The error condition of a stanza, with the server's text if it gave one."""
    condition, text = stanza_error(stanza)
    return f"{condition} ({text})" if text else condition


def power_of(affiliation: str, role: str) -> int:
    level = AFFILIATION_POWER.get(affiliation, 0)
    return max(level, 50) if role == "moderator" else level


class JoinError(Exception):
    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}{': ' + text if text else ''}")
        self.condition = condition
        self.text = text


#: Join errors that are the room's access rules (XEP-0045 7.2), as "You ... the XMPP room".
ACCESS_REFUSALS = {
    "forbidden": "are banned from",
    "registration-required": "are not a member of (members-only)",
    "not-authorized": "need a password for",
    "service-unavailable": "could not join (it is full)",
}


@dataclass
class Occupant:
    nick: str
    remote_id: str
    affiliation: str = "none"
    role: str = "participant"
    show: str = ""
    status: str | None = None


def _matrix_presence(show: str) -> str:
    """XMPP ``show`` -> Matrix presence: away, xa and dnd are all "unavailable"."""
    return "online" if show in ("", "chat") else "unavailable"


@dataclass
class Room:
    jid: str
    occupants: dict[str, Occupant] = field(default_factory=dict)  # XMPP users, by nick
    ours: dict[str, str] = field(default_factory=dict)  # our occupants: nick -> login id
    nick_of: dict[str, str] = field(default_factory=dict)  # login id -> nick (joined/joining)
    joins: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    listener: str | None = None
    subject: str | None = None
    #: The room advertises XEP-0421 occupant ids (only then are they not the sender's own).
    occupant_ids: bool | None = None

    @property
    def key(self) -> PortalKey:
        return PortalKey(self.jid)

    def joined(self, login_id: str) -> bool:
        return login_id in self.nick_of and login_id not in self.joins

    def members(self) -> list[ChatMember]:
        """The XMPP occupants as seen by the listener (Matrix users' own are not ghosts)."""
        return [
            ChatMember(o.remote_id, power_of(o.affiliation, o.role), name=o.nick)
            for o in self.occupants.values()
        ]

    @property
    def members_complete(self) -> bool:
        """The room sends every occupant's presence before the joiner's own (XEP-0045 7.2.3):
        once its listener is in, the occupants are everyone."""
        return self.listener is not None and self.joined(self.listener)

    def drop(self, login_id: str) -> None:
        nick = self.nick_of.pop(login_id, None)
        if nick is not None and self.ours.get(nick) == login_id:
            del self.ours[nick]
        if self.listener == login_id:
            # Hand over to another joined occupant: it has received every stanza too.
            self.listener = next((lid for lid in self.nick_of if self.joined(lid)), None)
            if self.listener is None:
                self.occupants.clear()


def _nick_candidates(nick: str) -> list[str]:
    nick = safe_nick(nick)
    return [nick, f"{nick} [m]", f"{nick} [m2]", f"{nick} [m3]"]


class MucManager:
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
        try:
            for candidate in _nick_candidates(nick):
                fut: asyncio.Future[str] = loop.create_future()
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
                presence = _matrix_presence(known.show if known else "")
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
            room.key, sender, presence=_matrix_presence(show), status_msg=status
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

    # -- moderation from Matrix -------------------------------------------------------------

    def nick_of_remote(self, room_jid: str, remote_id: str) -> str | None:
        room = self.rooms.get(room_jid)
        if room is None:
            return None
        for occupant in room.occupants.values():
            if occupant.remote_id == remote_id:
                return occupant.nick
        nick = remote_id[len(room_jid) + 1 :] if remote_id.startswith(room_jid + "/") else ""
        # A generated id (occupants.py) is no nick: its occupant is gone.
        return nick if nick and not nick.startswith("~") else None

    async def admin(
        self, puppet: str, room_jid: str, item: dict[str, str], reason: str | None
    ) -> None:
        """A muc#admin change (role or affiliation) made by a Matrix user's occupant."""
        xmpp = self.connector.component
        iq = xmpp.make_iq_set(ito=room_jid, ifrom=f"{puppet}/{RESOURCE}")
        from slixmpp.xmlstream import ET

        query = ET.SubElement(iq.xml, f"{{{MUC_ADMIN_NS}}}query")
        el = ET.SubElement(
            query, f"{{{MUC_ADMIN_NS}}}item", {k: clean_text(v) for k, v in item.items()}
        )
        if reason:
            ET.SubElement(el, f"{{{MUC_ADMIN_NS}}}reason").text = clean_text(reason)[:500]
        try:
            await iq.send(timeout=10)
        except IqError as e:
            raise PermissionError(f"the XMPP room refused: {error_condition(e.iq)}") from e
        except IqTimeout as e:
            raise TimeoutError("the XMPP room did not answer") from e

    async def notice(self, room_jid: str, text: str) -> None:
        """A notice from the bridge in the room's portal (why something did not happen)."""
        await self.connector.queue(
            None,
            RemoteMessage(
                PortalKey(room_jid), None, id="", content=MessageContent(text, msgtype="m.notice")
            ),
        )

    async def rename(self, puppet: str, room_jid: str, name: str) -> None:
        """Set muc#roomconfig_roomname through the owner configuration form."""
        from slixmpp.xmlstream import ET

        xmpp = self.connector.component
        frm = f"{puppet}/{RESOURCE}"
        get = xmpp.make_iq_get(ito=room_jid, ifrom=frm)
        ET.SubElement(get.xml, f"{{{MUC_OWNER_NS}}}query")
        try:
            current = await get.send(timeout=10)
        except IqError as e:
            raise PermissionError(f"the XMPP room refused: {error_condition(e.iq)}") from e
        except IqTimeout as e:
            raise TimeoutError("the XMPP room did not answer") from e
        form = current.xml.find(f"{{{MUC_OWNER_NS}}}query/{{{DATA_NS}}}x")
        if form is None:
            raise PermissionError("the XMPP room has no configuration form")
        # The whole form back, as it was, with the new name: servers differ on partial forms.
        iq = xmpp.make_iq_set(ito=room_jid, ifrom=frm)
        query = ET.SubElement(iq.xml, f"{{{MUC_OWNER_NS}}}query")
        submit = ET.SubElement(query, f"{{{DATA_NS}}}x", {"type": "submit"})
        named = False
        for fld in form.findall(f"{{{DATA_NS}}}field"):
            var = fld.get("var")
            if not var or fld.get("type") == "fixed":
                continue
            out = ET.SubElement(submit, f"{{{DATA_NS}}}field", {"var": var})
            if var == "muc#roomconfig_roomname":
                ET.SubElement(out, f"{{{DATA_NS}}}value").text = clean_text(name)[:255]
                named = True
                continue
            for value in fld.findall(f"{{{DATA_NS}}}value"):
                ET.SubElement(out, f"{{{DATA_NS}}}value").text = value.text or ""
        if not named:
            raise PermissionError("the XMPP room's configuration has no room name")
        try:
            await iq.send(timeout=10)
        except IqError as e:
            raise PermissionError(f"the XMPP room refused: {error_condition(e.iq)}") from e
        except IqTimeout as e:
            raise TimeoutError("the XMPP room did not answer") from e

    async def apply_power(
        self, puppet: str, room_jid: str, jid: str, nick: str, level: int
    ) -> None:
        """A Matrix power level for one of our occupants, as its affiliation (or role)."""
        if level >= 100:
            await self.admin(puppet, room_jid, {"affiliation": "owner", "jid": jid}, None)
        elif level >= 50:
            try:
                await self.admin(puppet, room_jid, {"affiliation": "admin", "jid": jid}, None)
            except PermissionError:
                # Only owners name admins; a moderator may still make a moderator.
                await self.admin(puppet, room_jid, {"role": "moderator", "nick": nick}, None)
        else:
            # "member" rather than "none": in a members-only room "none" would remove them.
            await self.admin(puppet, room_jid, {"affiliation": "member", "jid": jid}, None)
