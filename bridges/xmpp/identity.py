"""Who the gateway and its Matrix users are, as XMPP entities see them (a slixmpp plugin).

* XEP-0030: the component is a ``gateway/matrix`` entity; each Matrix user's JID is a
  ``client/pc`` with the features the gateway implements for it. Unknown JIDs on the component
  get ``item-not-found``.
* XEP-0054: vcard-temp of the component and of Matrix users (their display name, and their
  avatar as an EXTVAL link when there is one).
* Reading XMPP users' vCards (name, nickname, photo) for their ghosts.

The plugin asks its ``lookup`` callable (set by the connector) about a JID on the component.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slixmpp import JID, Iq
from slixmpp.exceptions import IqError, IqTimeout, XMPPError
from slixmpp.plugins import BasePlugin, register_plugin
from slixmpp.plugins.xep_0030.stanza import DiscoInfo, DiscoItems
from slixmpp.plugins.xep_0054.stanza import VCardTemp
from slixmpp.xmlstream import ET

log = logging.getLogger("bridgekit.xmpp.identity")

VCARD_NS = "vcard-temp"
#: What a Matrix user's JID supports (XEP-0030 features).
PUPPET_FEATURES = [
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/xhtml-im",
    "jabber:x:oob",
    "urn:xmpp:receipts",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:message-correct:0",
    "urn:xmpp:message-retract:1",
    "urn:xmpp:reactions:0",
    "urn:xmpp:reply:0",
    "urn:xmpp:sid:0",
    "urn:xmpp:styling:0",
    "vcard-temp",
]
GATEWAY_FEATURES = [
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "jid\\20escaping",
    "urn:xmpp:ping",
    "vcard-temp",
]


@dataclass
class Puppet:
    """A Matrix user as the component presents them."""

    jid: str
    name: str
    avatar_url: str | None = None


@dataclass
class VCardInfo:
    name: str | None = None
    photo: bytes | None = None
    photo_type: str = "image/png"


class BridgekitIdentity(BasePlugin):
    name = "bridgekit_identity"
    description = "bridgekit: disco identities and vCards of the gateway and its users"
    dependencies = {"xep_0030", "xep_0054"}

    def plugin_init(self) -> None:
        self.lookup: Callable[[JID], Puppet | None] = lambda jid: None
        self.gateway_name = "Matrix"
        disco = self.xmpp.plugin["xep_0030"]
        disco.set_node_handler("get_info", None, None, self._get_info)
        disco.set_node_handler("get_items", None, None, self._get_items)
        self.xmpp.plugin["xep_0054"].api.register(self._get_vcard, "get_vcard")

    # -- answering ----------------------------------------------------------------------------

    def _is_gateway(self, jid: JID) -> bool:
        return not jid.node and jid.domain == self.xmpp.boundjid.domain

    def _get_info(self, jid: JID, node: str | None, ifrom: JID, data: Any) -> DiscoInfo:
        info = DiscoInfo()
        if node:
            raise XMPPError("item-not-found")
        if self._is_gateway(jid):
            info.add_identity("gateway", "matrix", self.gateway_name)
            for feature in GATEWAY_FEATURES:
                info.add_feature(feature)
            return info
        puppet = self.lookup(jid)
        if puppet is None:
            raise XMPPError("item-not-found", "No such Matrix user on this gateway")
        info.add_identity("client", "pc", puppet.name)
        for feature in PUPPET_FEATURES:
            info.add_feature(feature)
        return info

    def _get_items(self, jid: JID, node: str | None, ifrom: JID, data: Any) -> DiscoItems:
        if self._is_gateway(jid) or self.lookup(jid) is not None:
            return DiscoItems()
        raise XMPPError("item-not-found")

    def _get_vcard(self, jid: Any, node: Any, ifrom: Any, data: Any) -> VCardTemp | None:
        jid = JID(jid)
        vcard = VCardTemp()
        if self._is_gateway(jid):
            vcard["FN"] = self.gateway_name
            return vcard
        puppet = self.lookup(jid)
        if puppet is None:
            return None
        vcard["FN"] = puppet.name
        vcard["NICKNAME"] = puppet.name
        if puppet.avatar_url:
            photo = ET.SubElement(vcard.xml, f"{{{VCARD_NS}}}PHOTO")
            ET.SubElement(photo, f"{{{VCARD_NS}}}EXTVAL").text = puppet.avatar_url
        return vcard

    # -- asking -------------------------------------------------------------------------------

    async def fetch_vcard(
        self, jid: str, ifrom: str | None = None, timeout: float = 5
    ) -> VCardInfo:
        """An XMPP user's vCard (their server answers for them); empty on any failure."""
        iq: Iq = self.xmpp.make_iq_get(ito=jid, ifrom=ifrom or self.xmpp.boundjid)
        ET.SubElement(iq.xml, f"{{{VCARD_NS}}}vCard")
        try:
            result = await iq.send(timeout=timeout)
        except (IqError, IqTimeout) as e:
            log.debug("No vCard for %s: %s", jid, e)
            return VCardInfo()
        card = result.xml.find(f"{{{VCARD_NS}}}vCard")
        if card is None:
            return VCardInfo()
        info = VCardInfo()
        for tag in ("NICKNAME", "FN"):
            el = card.find(f"{{{VCARD_NS}}}{tag}")
            if el is not None and el.text and el.text.strip():
                info.name = el.text.strip()[:255]
                break
        binval = card.find(f"{{{VCARD_NS}}}PHOTO/{{{VCARD_NS}}}BINVAL")
        if binval is not None and binval.text:
            try:
                info.photo = base64.b64decode("".join(binval.text.split()), validate=True)
            except (binascii.Error, ValueError):
                log.debug("Bad PHOTO in the vCard of %s", jid)
            ptype = card.find(f"{{{VCARD_NS}}}PHOTO/{{{VCARD_NS}}}TYPE")
            if ptype is not None and ptype.text and ptype.text.startswith("image/"):
                info.photo_type = ptype.text.strip()
        return info

    async def fetch_info(self, jid: str, ifrom: str | None = None, timeout: float = 5) -> DiscoInfo:
        """disco#info of another entity (a MUC room, a server). Raises IqError / IqTimeout."""
        iq: Iq = self.xmpp.make_iq_get(ito=jid, ifrom=ifrom or self.xmpp.boundjid)
        iq.enable("disco_info")
        result = await iq.send(timeout=timeout)
        return result["disco_info"]


register_plugin(BridgekitIdentity)
