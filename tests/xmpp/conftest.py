"""Fixtures of the XMPP connector tests: a real Prosody, real slixmpp clients, the bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.ids import escape_localpart
from tests.conftest import SERVER_NAME, BridgeEnv
from tests.harness.prosody import Prosody, XmppTestClient, require_prosody


def ghost(jid: str) -> str:
    return f"@_xmpp_{escape_localpart(jid)}:{SERVER_NAME}"


def alias(room: str) -> str:
    return f"#_xmpp_{escape_localpart(room)}:{SERVER_NAME}"


def body_is(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == text


@pytest.fixture(scope="session")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    """One Prosody for the session (tests that restart it use ``own_prosody``)."""
    require_prosody()
    server = Prosody(tmp_path_factory.mktemp("prosody"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_prosody(tmp_path: Path) -> Iterator[Prosody]:
    require_prosody()
    server = Prosody(tmp_path / "prosody")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def xmpp_clients() -> AsyncIterator[Callable[..., Awaitable[XmppTestClient]]]:
    """Open XMPP clients (registered on the given server); all closed at the end."""
    opened: list[XmppTestClient] = []

    async def open_client(server: Prosody, user: str) -> XmppTestClient:
        client = await server.client(user)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


def xmpp_networks(server: Prosody, **extra: Any) -> dict[str, Any]:
    """Both the fake network and XMPP: events queued without a login must carry their network."""
    return {"fake": {"enabled": True}, "xmpp": server.bridge_config(**extra)}


@pytest.fixture
async def xmpp_bridge(make_bridge: Any, prosody: Prosody, bridge_env: BridgeEnv) -> Bridge:
    bridge = await make_bridge(networks=xmpp_networks(prosody))
    connector = bridge.connectors["xmpp"]
    assert await connector.component.wait_online(15), connector.component.last_error
    return bridge
