"""A connector with no optional capabilities: the runtime detects that and falls back."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.contract.connector import LoginInfo, MessageResult, NetworkClient, capabilities_of
from bridgekit.contract.events import ChatInfo, MatrixMessage, PortalKey
from bridgekit.testing import FakeClient, FakeConnector
from bridgekit.testing.fake import SentItem
from tests.conftest import BridgeEnv
from tests.helpers import body_is

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


class BareClient(NetworkClient):
    """Only what the contract requires: connect, disconnect, send messages, describe chats."""

    connector: FakeConnector

    async def connect(self) -> None:
        from bridgekit.contract.connector import BridgeStateEvent

        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)

    async def disconnect(self) -> None:
        pass

    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        net = self.connector.network
        remote_id = net.next_id()
        await net.record(SentItem("message", self.login.id, msg.portal.id, msg, remote_id))
        return MessageResult(remote_id)

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        return ChatInfo(name=portal.id)


class BareConnector(FakeConnector):
    async def load_login(self, login: LoginInfo) -> NetworkClient:
        return BareClient(self, login)


def test_capabilities_are_detected():
    assert capabilities_of(BareClient.__new__(BareClient)) == set()
    assert capabilities_of(FakeClient.__new__(FakeClient)) >= {
        "edits",
        "reactions",
        "redactions",
        "typing",
        "read_receipts",
        "backfill",
    }


async def test_edit_without_edit_capability_becomes_a_correction_message(
    make_bridge, bridge_env: BridgeEnv, uid, monkeypatch: Any
):
    monkeypatch.setattr("tests.conftest.discover_connectors", lambda: {"fake": BareConnector})
    import bridgekit.bridge

    monkeypatch.setattr(bridgekit.bridge, "discover_connectors", lambda: {"fake": BareConnector})
    bridge = await make_bridge()
    connector = bridge.connectors["fake"]
    assert isinstance(connector, BareConnector)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        await bridge.commands.get_or_create_user(alice.user_id)
        remote = uid("a")
        client = await bridge.add_login(
            LoginInfo(bridge.new_login_id(), alice.user_id, "fake", remote, remote)
        )
        chat = uid("chat")
        connector.network.add_chat(chat, members=[remote])
        from bridgekit.contract.events import EventSender, MessageContent, RemoteMessage

        await bridge.queue_remote_event(
            client.login.id,
            RemoteMessage(
                PortalKey(chat), EventSender("bob"), id=uid("m"), content=MessageContent("hello")
            ),
        )
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        await alice.wait_for_event(room_id, body_is("hello"))
        first = await alice.send_text(room_id, "teh typo")
        await connector.network.wait_for(lambda i: i.data.event_id == first)
        await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* the typo",
                "m.new_content": {"msgtype": "m.text", "body": "the typo"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            },
        )
        fallback = await connector.network.wait_for(
            lambda i: i.kind == "message" and i.data.content.body == "* the typo"
        )
        assert fallback.data.event_id != first
        # A reaction has nowhere to go: nothing is sent, nothing breaks.
        await alice.react(room_id, first, "👍")
        await alice.send_text(room_id, "after the reaction")
        await connector.network.wait_for(lambda i: i.data.content.body == "after the reaction")
        assert [i.kind for i in connector.network.sent] == ["message"] * 3
