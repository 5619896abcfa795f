"""A connector's command gets its network's BridgeAPI as ``ce.bridge``, not the runtime;
``start-chat`` answers clearly for what it cannot do (IRC/XMPP chats: tests/irc and
tests/xmpp test_e2e_start_chat.py)."""

from __future__ import annotations

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.commands import CommandEvent
from bridgekit.network_api import NetworkBridge
from tests.conftest import BridgeEnv
from tests.helpers import management_room

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_a_connector_command_sees_its_network_bridge(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    seen: list[object] = []
    command = bridge.commands.commands["fake-chats"]  # registered by the fake connector
    original = command.handler

    async def spy(ce: CommandEvent) -> None:
        seen.append(ce.bridge)
        await original(ce)

    command.handler = spy
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        assert "Chats:" in await conv.say("fake-chats")
        assert seen == [bridge.connectors["fake"].bridge]
        assert isinstance(seen[0], NetworkBridge) and seen[0].network == "fake"
        # The runtime's own commands still get the runtime, and start-chat answers for a
        # network without the capability, an unknown one and a missing identifier.
        assert "cannot start chats" in await conv.say("start-chat fake bob")
        assert "no network `nope`" in await conv.say("pm nope bob")
        assert "Usage" in await conv.say("start-chat fake")
        assert "start-chat" in await conv.say("help")
