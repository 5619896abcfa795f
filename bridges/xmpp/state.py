"""What XMPP keeps per login, typed, on the login's row (bridgekit's login metadata).

The MUCs a login is in were a key/value string (``xmpp:rooms:<login id>``) that outlived the
login; migration 001 of this connector moved them here, where they go with the login's row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = ["XMPPLoginMeta"]


@dataclass
class XMPPLoginMeta:
    VERSION: ClassVar[int] = 1
    #: MUCs to be in, rejoined after a restart: room JID -> the nick used there.
    rooms: dict[str, str] = field(default_factory=dict)
