"""Connector commands reach the runtime only through the BridgeAPI contract: ``ce.bridge`` is
their network's NetworkBridge (end to end: tests/test_e2e_start_chat.py), and no module under
bridges/ names the runtime's portals, Matrix client or store through it. They used to
(``ce.bridge.portals.get_or_create`` in irc/commands.py and xmpp/commands.py), so a connector
could create another network's portals or bypass the login checks of the contract."""

from __future__ import annotations

import ast
from pathlib import Path

import bridges
from bridgekit.contract.connector import BridgeAPI
from bridgekit.network_api import NetworkBridge

BRIDGES = Path(bridges.__file__).parent
RUNTIME_ONLY = {"portals", "matrix", "store", "commands", "clients", "connectors", "_bridge"}


def _bridge_uses(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, owner, attribute) of every ``<owner>.bridge.<attribute>`` in ``tree``."""
    found = []
    for node in ast.walk(tree):
        inner = node.value if isinstance(node, ast.Attribute) else None
        if isinstance(inner, ast.Attribute) and inner.attr == "bridge":
            owner = ast.unparse(inner.value)
            found.append((node.lineno, owner, node.attr))
    return found


def test_connector_modules_use_only_the_contract_through_a_bridge() -> None:
    modules = sorted(BRIDGES.rglob("*.py"))
    assert any(p.name == "commands.py" for p in modules)
    offences, command_uses = [], 0
    for path in modules:
        for line, owner, attr in _bridge_uses(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(BRIDGES)}:{line}: {owner}.bridge.{attr}"
            command_uses += owner == "ce"
            if (
                attr in RUNTIME_ONLY
                or not hasattr(BridgeAPI, attr)
                and attr
                not in (
                    "network",
                    "domain",
                )
            ):
                offences.append(where)
    assert offences == []
    assert command_uses  # the scan does see the command handlers' uses


def test_the_scan_catches_a_reach_into_the_runtime() -> None:
    code = "async def h(ce):\n    await ce.bridge.portals.get_or_create('irc', k, None)\n"
    assert _bridge_uses(ast.parse(code)) == [(2, "ce", "portals")]


def test_the_network_bridge_has_no_runtime_internals() -> None:
    for attr in ("portals", "matrix", "store", "commands", "clients", "connectors"):
        assert not hasattr(BridgeAPI, attr) and attr not in vars(NetworkBridge)
