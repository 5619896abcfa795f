"""What a Matrix user changes in a MUC through their occupant: roles, affiliations, name.

Mixed into :class:`~bridges.xmpp.muc.MucManager`, the way slixmpp keeps MUC administration
apart from joining. Power levels given to Matrix users who are occupants become
affiliations (100: owner, 50: admin, or moderator where the acting occupant may not name
admins), and a new room name goes into the room's muc#owner configuration form. Where the
room refuses, the caller gets a ``PermissionError`` and the portal a notice saying so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.contract.events import MessageContent, PortalKey, RemoteMessage

from .jid import clean_text
from .muc_room import RESOURCE
from .stanza_errors import error_condition

if TYPE_CHECKING:
    from .muc import MucManager

MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"
MUC_OWNER_NS = "http://jabber.org/protocol/muc#owner"
DATA_NS = "jabber:x:data"


class MucAdmin:
    """The administration half of :class:`~bridges.xmpp.muc.MucManager`."""

    def nick_of_remote(self: MucManager, room_jid: str, remote_id: str) -> str | None:
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
        self: MucManager, puppet: str, room_jid: str, item: dict[str, str], reason: str | None
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

    async def notice(self: MucManager, room_jid: str, text: str) -> None:
        """A notice from the bridge in the room's portal (why something did not happen)."""
        await self.connector.queue(
            None,
            RemoteMessage(
                PortalKey(room_jid), None, id="", content=MessageContent(text, msgtype="m.notice")
            ),
        )

    async def rename(self: MucManager, puppet: str, room_jid: str, name: str) -> None:
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
        self: MucManager, puppet: str, room_jid: str, jid: str, nick: str, level: int
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
