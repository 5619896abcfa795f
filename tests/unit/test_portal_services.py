"""The portal services take their collaborators, not the bridge: each is built from what it
uses (portal/portals.py wires them), so none of their modules imports ``bridgekit.bridge``,
and the client a Matrix sender's event goes out through is chosen from the logins alone."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bridgekit.contract.connector import AutoLogin, LoginInfo
from bridgekit.contract.events import PortalKey
from bridgekit.portal.clients import SenderClients
from bridgekit.settings import RelaySettings

PORTAL = Path(__file__).resolve().parents[2] / "bridgekit" / "portal"
SERVICES = [
    "clients",
    "custom_emoji",
    "matrix_content",
    "matrix_to_remote",
    "member_sync",
    "message_parts",
    "portals",
    "puppets",
    "relaying",
    "remote_to_matrix",
    "rooms",
    "start_chat",
]


def _imports(name: str) -> set[str]:
    """Every module ``portal/<name>.py`` imports, TYPE_CHECKING blocks included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse((PORTAL / f"{name}.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ["bridgekit", "portal"][: 3 - node.level] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


@pytest.mark.parametrize("name", SERVICES)
def test_a_portal_service_module_does_not_import_the_bridge(name: str) -> None:
    assert "bridgekit.bridge" not in _imports(name)


def test_message_parts_does_not_import_remote_to_matrix_which_calls_it() -> None:
    assert "bridgekit.portal.remote_to_matrix" not in _imports("message_parts")


class _Client:
    def __init__(self, login_id: str, user: str, network: str, chats: set[str]) -> None:
        self.login = LoginInfo(id=login_id, network=network, user_mxid=user, remote_id=login_id)
        self.chats = chats

    def is_in_portal(self, key: PortalKey) -> bool:
        return key.id in self.chats


class _AutoConnector(AutoLogin):
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def auto_login(self, user_mxid: str, portal: PortalKey) -> LoginInfo | None:
        self.asked.append(user_mxid)
        return LoginInfo(f"auto-{user_mxid}", user_mxid, "net", remote_id="me")


def _senders(
    clients: dict[str, Any], connectors: dict[str, Any], relay: bool = True
) -> tuple[SenderClients, list[str]]:
    added: list[str] = []

    def clients_of(user: str, network: str) -> list[Any]:
        return [c for c in clients.values() if c.login.user_mxid == user]

    async def add_login(info: LoginInfo) -> Any:
        added.append(info.id)
        clients[info.id] = _Client(info.id, info.user_mxid, info.network, {"c"})
        return clients[info.id]

    senders = SenderClients(
        connectors=connectors,
        clients=clients,
        clients_of=clients_of,
        add_login=add_login,
        relay=RelaySettings(enabled=relay),
    )
    return senders, added


async def test_a_sender_is_sent_for_by_their_own_login_else_the_relay() -> None:
    own = _Client("a1", "@a:x", "net", {"c"})
    elsewhere = _Client("b1", "@b:x", "net", {"other"})
    relay = _Client("r1", "@r:x", "net", {"c"})
    senders, _ = _senders({"a1": own, "b1": elsewhere, "r1": relay}, {})
    portal: Any = SimpleNamespace(network="net", key=PortalKey("c"), relay_login="r1")
    assert await senders.choose(portal, "@a:x") == (own, False)
    assert await senders.choose(portal, "@b:x") == (relay, True)  # their login is not in it
    portal.relay_login = None
    assert await senders.choose(portal, "@b:x") == (None, False)
    off, _ = _senders({"r1": relay}, {}, relay=False)
    portal.relay_login = "r1"
    assert await off.choose(portal, "@b:x") == (None, False)  # bridge.relay.enabled: false


async def test_an_auto_login_network_makes_a_login_for_a_permitted_sender() -> None:
    connector = _AutoConnector()
    senders, added = _senders({}, {"net": connector})
    users: list[str] = []

    async def ensure_user(mxid: str) -> None:
        users.append(mxid)

    senders.level_of = lambda mxid: 2 if mxid == "@a:x" else 1
    senders.ensure_user = ensure_user
    portal: Any = SimpleNamespace(network="net", key=PortalKey("c"), relay_login=None)
    client, relayed = await senders.choose(portal, "@a:x")
    assert client is not None and client.login.id == "auto-@a:x" and not relayed
    assert added == ["auto-@a:x"] and users == ["@a:x"]
    assert await senders.choose(portal, "@guest:x") == (None, False)  # level 1: not asked
    assert connector.asked == ["@a:x"]
