"""Which logged-in network client speaks for a portal."""

from __future__ import annotations

from collections.abc import Mapping

from ..contract.connector import NetworkClient
from ..contract.events import PortalKey


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
