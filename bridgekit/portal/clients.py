"""Which logged-in network client speaks for a portal, or for a Matrix sender in it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from ..contract.connector import (
    AutoLogin,
    DefaultRelay,
    LoginInfo,
    NetworkClient,
    NetworkConnector,
    RelaysOwnUser,
)
from ..contract.events import PortalKey

if TYPE_CHECKING:
    from ..objects.portal import Portal
    from ..settings import RelaySettings


def client_for(
    clients: Mapping[str, NetworkClient], network: str, key: PortalKey, login_id: str | None
) -> NetworkClient | None:
    """The client of ``login_id`` if it is loaded, else any login of ``network`` in the chat."""
    if login_id and login_id in clients:
        return clients[login_id]
    for client in clients.values():
        if client.login.network == network and client.is_in_portal(key):
            return client
    return None


class SenderClients:
    """Which client sends a Matrix user's event to a portal's chat (see :meth:`choose`)."""

    #: Set by :meth:`~.portals.PortalService.attach`: the router and the commands are made
    #: after the portal services. An :class:`AutoLogin` connector's first message of a user
    #: needs the user's level and their user row.
    level_of: Callable[[str], int]
    ensure_user: Callable[[str], Awaitable[object]]

    def __init__(
        self,
        *,
        connectors: Mapping[str, NetworkConnector],
        clients: Mapping[str, NetworkClient],
        clients_of: Callable[[str, str], Iterable[NetworkClient]],
        add_login: Callable[[LoginInfo], Awaitable[NetworkClient]],
        relay: RelaySettings,
    ) -> None:
        self.connectors = connectors  # the live map of enabled connectors
        self.clients = clients  # the live map of loaded logins
        self.clients_of = clients_of  # a user's logins (of a network)
        self.add_login = add_login
        self.relay = relay

    async def choose(self, portal: Portal, sender: str) -> tuple[NetworkClient | None, bool]:
        """(client, relayed): the sender's own login in this portal, else the relay login.
        A login that is a bot account (:class:`RelaysOwnUser`) relays its own user."""
        own_bot: NetworkClient | None = None
        for client in self.clients_of(sender, portal.network):
            if client.is_in_portal(portal.key):
                if not isinstance(client, RelaysOwnUser):
                    return client, False
                own_bot = own_bot or client
        connector = self.connectors.get(portal.network)
        if isinstance(connector, AutoLogin) and self.level_of(sender) >= 2:
            info = await connector.auto_login(sender, portal.key)
            if info is not None:
                await self.ensure_user(sender)
                return await self.add_login(info), False
        relay_id = portal.relay_login
        if not relay_id and isinstance(connector, DefaultRelay):
            relay_id = connector.default_relay_login(portal.key)
        if relay_id and self.relay.enabled:
            relay = self.clients.get(relay_id)
            if relay is not None:
                return relay, True
        if own_bot is not None:
            return own_bot, True
        return None, False
