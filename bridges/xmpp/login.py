"""``login xmpp``: a Matrix user chooses the nick they use in XMPP rooms.

There are no XMPP credentials: every Matrix user speaks through the bridge's component under the
JID the ``user_jid_template`` gives them. The login exists so the user can pick a nick (and see
their JID); it is also created on the fly (AutoLogin) when they first speak in an XMPP portal.
Running it again changes the nick.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from bridgekit.contract.connector import LoginField, LoginInfo, LoginProcess, LoginStep

from .jid import clean_text, parse_jid

if TYPE_CHECKING:
    from .connector import XMPPConnector


def puppet_login(connector: XMPPConnector, user_mxid: str, nick: str | None = None) -> LoginInfo:
    """A new login for ``user_mxid`` (raises ValueError if their JID cannot be used)."""
    jid = connector.puppets.jid_for(user_mxid)
    parsed = parse_jid(jid)
    if parsed is None or not parsed.node or parsed.bare != jid:
        raise ValueError(f"{user_mxid} has no valid XMPP address under this bridge ({jid!r})")
    owner = connector.client_by_jid(jid)
    if owner is not None and owner.login.user_mxid != user_mxid:
        raise ValueError(f"the XMPP address {jid} already belongs to {owner.login.user_mxid}")
    metadata = {"nick": nick} if nick else {}
    return LoginInfo(
        id=secrets.token_hex(8),
        user_mxid=user_mxid,
        network=connector.name,
        remote_id=jid,
        remote_name=nick or jid,
        metadata=metadata,
    )


class NickLogin(LoginProcess):
    def __init__(self, connector: XMPPConnector, user_mxid: str) -> None:
        self.connector = connector
        self.user_mxid = user_mxid

    async def start(self) -> LoginStep:
        jid = self.connector.puppets.jid_for(self.user_mxid)
        return LoginStep(
            instructions=f"On XMPP you are {jid}. Choose the nick you have in XMPP rooms.",
            fields=[LoginField("nick", "nick", "or - to use your Matrix display name")],
        )

    async def submit(self, values: dict[str, str]) -> LoginStep:
        nick = clean_text(values.get("nick", "")).strip()[:64]
        if nick in ("-", ""):
            nick = ""
        existing = self.connector.client_of_user(self.user_mxid)
        if existing is not None:
            login = existing.login
            metadata = (
                {**login.metadata, "nick": nick}
                if nick
                else {k: v for k, v in login.metadata.items() if k != "nick"}
            )
            info = LoginInfo(
                id=login.id,
                user_mxid=login.user_mxid,
                network=login.network,
                remote_id=login.remote_id,
                remote_name=nick or login.remote_id,
                metadata=metadata,
            )
        else:
            info = puppet_login(self.connector, self.user_mxid, nick or None)
        return LoginStep(complete=info)
