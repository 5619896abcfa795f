"""``start-chat xmpp <user@example.org>``: a JID as a remote user (:class:`IdentifierResolver`).

XMPP has no cheap "does this account exist" question (a server answers for its users only
if they share presence), so any well-formed user JID is accepted, as a client would; the
user's puppet login is made on demand, as ``xmpp-dm`` always did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgekit.contract.connector import IdentifierResolver, ResolvedIdentifier
from bridgekit.contract.events import PortalKey, RemoteUserID

from .jid import parse_jid
from .login import puppet_login

if TYPE_CHECKING:
    from .client import XMPPClient
    from .connector import XMPPConnector


async def ensure_client(connector: XMPPConnector, user_mxid: str) -> XMPPClient:
    """The user's puppet login, made if they have none (RuntimeError if they may not)."""
    client = connector.client_of_user(user_mxid)
    if client is None:
        try:
            login = puppet_login(connector, user_mxid)
        except ValueError as e:  # their Matrix id makes no JID: not the identifier's fault
            raise RuntimeError(str(e)) from e
        await connector.bridge.add_login(login)
        client = connector.client_of_user(user_mxid)
    assert client is not None
    return client


class XMPPIdentifiers(IdentifierResolver):
    """The XMPP connector's half of ``start-chat``."""

    async def resolve_identifier(
        self, user_mxid: str, identifier: str
    ) -> ResolvedIdentifier | None:
        connector: XMPPConnector = self  # type: ignore[assignment]
        jid = parse_jid(identifier.strip())
        if jid is None or not jid.node:
            raise ValueError("not the address of an XMPP user (user@example.org)")
        if jid.domain == connector.component_jid:
            raise ValueError("that is a Matrix user's address on this bridge")
        client = await ensure_client(connector, user_mxid)
        key = PortalKey(jid.bare, client.login.id)
        return ResolvedIdentifier(client.login.id, RemoteUserID(jid.bare), jid.bare, key)
