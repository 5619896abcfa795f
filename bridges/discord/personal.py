"""Personal logins (a person's own Discord account): who speaks for their messages, and
which messages are the bridge's own coming back.

Double puppeting: a message (reaction) by the account of a personal login, written in another
Discord client, reaches Matrix from that login's Matrix user (``EventSender.is_me``) in every
guild portal (the guild's bot receives it; the sender is still the person), and in the
login's own DMs; in another login's DM portal the same account is a ghost, as the other
person sees it.

Echoes: what a login sends as itself carries a ``nonce`` that Discord gives back in the
MESSAGE_CREATE (which may come before the REST reply with the new id). The nonce names the
portal it was sent to, so the message is not bridged back there; in a DM the same message is
still bridged to the other participant's own portal.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from bridgekit.contract.events import EventSender, PortalKey

from .ids import user_rid
from .state import USER

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

#: Nonces of sends remembered (their echoes come within seconds).
MAX_NONCES = 5_000


class Personal:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self._nonces: OrderedDict[str, PortalKey] = OrderedDict()

    def login_of(self, user_id: int | str) -> DiscordClient | None:
        """The live personal login of a Discord account, if any."""
        uid = str(user_id)
        for client in self.connector.clients.values():
            if client.meta.kind == USER and client.meta.user_id == uid and not client.dead:
                return client
        return None

    def sender(
        self,
        client: DiscordClient,
        user_id: int | str,
        name: str | None = None,
        in_guild: bool | None = None,
    ) -> EventSender:
        """A Discord user as the sender of an event ``client`` received: the Matrix user of a
        personal login (double puppeting) in guild portals and in that login's own DMs,
        else their ghost. ``in_guild`` None: guess from the receiver (a bot's events are
        guild events)."""
        own = self.login_of(user_id)
        guild = client.is_bot if in_guild is None else in_guild
        if own is not None and (guild or own.login.id == client.login.id):
            return EventSender(user_rid(user_id), is_me=True, login_id=own.login.id, name=name)
        return EventSender(user_rid(user_id), name=name)

    # -- echoes ------------------------------------------------------------------------------

    def expect(self, portal: PortalKey) -> str:
        """A nonce for a message about to be sent to ``portal`` (Discord's limit: 25 chars)."""
        nonce = str(secrets.randbits(63))
        self._nonces[nonce] = portal
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        return nonce

    def is_echo(self, nonce: Any, portal: PortalKey) -> bool:
        """Whether a message with ``nonce`` is one the bridge sent to ``portal``."""
        return nonce is not None and self._nonces.get(str(nonce)) == portal
