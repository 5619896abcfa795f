"""Presences the component receives that are not a room's: contacts of Matrix users' logins.

Mixed into :class:`~bridges.xmpp.connector.XMPPConnector` (a room's presences go on to
:class:`~bridges.xmpp.muc.MucManager`). Kept apart because 1:1 contacts have their own
small protocol: subscription requests and probes answered for the login, availability
bridged as Matrix presence, and a contact's advertised vCard photo hash (XEP-0153) as the
signal that their profile changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slixmpp import Presence

from bridgekit.contract.events import (
    EventSender,
    PortalKey,
    RemotePresence,
    RemoteUserInfoChange,
)

from .jid import clean_text

if TYPE_CHECKING:
    from .client import XMPPClient
    from .connector import XMPPConnector

VCARD_UPDATE = "vcard-temp:x:update"


class PresenceHandling:
    """The presence half of :class:`~bridges.xmpp.connector.XMPPConnector`."""

    async def handle_presence(self: XMPPConnector, pres: Presence) -> None:
        frm, to = pres["from"], pres["to"]
        ptype = pres.xml.get("type", "available")
        client = self.client_by_jid(to.bare)
        if client is not None and frm.bare in self.muc.rooms:
            await self.muc.handle_presence(pres, client.login.id)
            return
        if client is None:
            if to.node and ptype in ("subscribe", "probe"):
                reply = self.component.make_presence(
                    pto=frm.bare, pfrom=to.bare, ptype="unsubscribed"
                )
                reply.send()
            return
        if not frm.node or frm.domain == self.component_jid:
            return
        if ptype == "subscribe":
            client.contacts.add(frm.bare)
            self.component.make_presence(pto=frm.bare, pfrom=client.jid, ptype="subscribed").send()
            self._send_availability(client, frm.bare)
        elif ptype == "probe":
            client.contacts.add(frm.bare)
            self._send_availability(client, frm.bare)
        elif ptype == "unsubscribe":
            client.contacts.discard(frm.bare)
            self.component.make_presence(
                pto=frm.bare, pfrom=client.jid, ptype="unsubscribed"
            ).send()
        elif ptype in ("available", "unavailable"):
            show = pres.xml.findtext("{*}show") or ""
            presence = (
                "offline"
                if ptype == "unavailable"
                else ("online" if show in ("", "chat") else "unavailable")
            )
            status = clean_text(pres.xml.findtext("{*}status") or "")[:200] or None
            portal = PortalKey(frm.bare, client.login.id)
            sender = EventSender(frm.bare, login_id=client.login.id)
            await self.queue(
                client.login.id,
                RemotePresence(portal, sender, presence=presence, status_msg=status),
            )
            if ptype == "available":
                await self._photo_advertised(client, frm.bare, pres)

    async def _photo_advertised(
        self: XMPPConnector, client: XMPPClient, jid: str, pres: Presence
    ) -> None:
        """XEP-0153: a contact's presence carries the SHA-1 of their vCard photo. A new one
        (or the first since start) means their profile changed: the vCard is read again and
        reported to the ghost, whose unchanged parts cost nothing (nor does a photo its
        bytes were uploaded for already). An empty hash means no photo."""
        photo = pres.xml.find(f"{{{VCARD_UPDATE}}}x/{{{VCARD_UPDATE}}}photo")
        if photo is None:  # the client does not say (yet): nothing to go by
            return
        digest = (photo.text or "").strip().lower()
        if self._photos.get(jid) == digest:
            return
        info = await self.user_info(jid)
        avatar = info.avatar_url if digest else ""
        if avatar is not None or not self.setting("avatars"):
            self._photos[jid] = digest  # a failed fetch is tried again at the next presence
        portal = PortalKey(jid, client.login.id)
        change = RemoteUserInfoChange(
            portal,
            EventSender(jid, login_id=client.login.id),
            name=info.name,
            avatar_url=avatar if self.setting("avatars") else None,
        )
        await self.queue(client.login.id, change)

    def _send_availability(self: XMPPConnector, client: XMPPClient, to: str) -> None:
        pres = self.component.make_presence(pto=to, pfrom=client.full_jid)
        if client.show:
            pres["show"] = client.show
        pres.send()
