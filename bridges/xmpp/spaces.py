"""The MUC service a room lives on, as the container (Matrix space) its portals share.

Like an IRC server's channels, the rooms of one MUC service (``conference.example.org``) are
one place on the network: :class:`ChatInfo.parent <bridgekit.contract.events.ChatInfo>` names
the service by its domain, and the space by the service's disco#info identity name
(Prosody's "Chatrooms"), or the domain where it gives none. The name is asked once per
service and kept, so a room's info and its listener's resyncs name the same space.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slixmpp.exceptions import IqError, IqTimeout

from bridgekit.contract.events import SpaceInfo

from .jid import clean_text

if TYPE_CHECKING:
    from .connector import XMPPConnector

log = logging.getLogger("bridges.xmpp.spaces")


class MucSpaces:
    def __init__(self, connector: XMPPConnector) -> None:
        self.connector = connector
        self._names: dict[str, str] = {}

    async def space_of(self, room: str) -> SpaceInfo | None:
        """The container of the MUC room ``room`` (a bare JID): its service's domain."""
        domain = room.rpartition("@")[2].lower() if "@" in room else ""
        if not domain:
            return None
        name = self._names.get(domain)
        if name is None:
            if not self.connector.component.online.is_set():
                return SpaceInfo(domain, name=domain)  # asked again once online
            name = self._names[domain] = await self._service_name(domain)
        return SpaceInfo(domain, name=name)

    async def _service_name(self, domain: str) -> str:
        try:
            disco = await self.connector.component.plugin["bridgekit_identity"].fetch_info(domain)
        except (IqError, IqTimeout) as e:
            log.info("No disco#info from the MUC service %s (%s): named by its domain", domain, e)
            return domain
        for category, _, _, name in disco["identities"]:  # (category, type, lang, name)
            if category == "conference" and name:
                return clean_text(name)[:255] or domain
        return domain
