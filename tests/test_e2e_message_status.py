"""Message send status and per-room capabilities, against real Synapse.

What became of each Matrix message, edit, reaction and redaction goes back to the sender's
client as a ``com.beeper.message_send_status`` event (bridgev2's format); what a room does
not allow (its :class:`RoomCapabilities`) is refused before the connector is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.connector import RoomCapabilities, SendRefused
from tests.conftest import BridgeEnv
from tests.helpers import notice_says, portal_scene

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

STATUS = "com.beeper.message_send_status"


def status_of(event_id: str, status: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(e: dict[str, Any]) -> bool:
        content = e.get("content", {})
        return (
            e.get("type") == STATUS
            and content.get("m.relates_to") == {"rel_type": "m.reference", "event_id": event_id}
            and (status is None or content.get("status") == status)
        )

    return check


async def test_send_status_success_and_refusals(make_bridge: Any, bridge_env: BridgeEnv, uid):
    bridge: Bridge = await make_bridge(**{"bridge.message_status_events": True})
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, _chat, room_id, net = scene
        ok = await alice.send_text(room_id, "this one arrives")
        evt = await alice.wait_for_event(room_id, status_of(ok))
        assert evt["sender"] == bridge.bot_mxid
        assert evt["content"]["status"] == "SUCCESS"
        assert evt["content"]["network"] == "fake"
        assert "reason" not in evt["content"]

        # The network refuses, saying why: a permanent failure with the connector's reason.
        net.fail_next_send = SendRefused("you are muted in this chat", reason="m.no_permission")
        muted = await alice.send_text(room_id, "muted")
        evt = await alice.wait_for_event(room_id, status_of(muted))
        assert evt["content"]["status"] == "FAIL_PERMANENT"
        assert evt["content"]["reason"] == "m.no_permission"
        assert "you are muted in this chat" in evt["content"]["message"]
        # Clients that show no status events still get the notice line.
        await alice.wait_for_event(room_id, notice_says("you are muted in this chat"))

        # Any other error: the network could not take it, sending again may work.
        net.fail_next_send = ConnectionError("connection reset")
        lost = await alice.send_text(room_id, "lost")
        evt = await alice.wait_for_event(room_id, status_of(lost))
        assert evt["content"]["status"] == "FAIL_RETRIABLE"
        assert evt["content"]["reason"] == "m.foreign_network_error"
        assert "connection reset" in evt["content"]["message"]

        # Reactions and redactions get their status too.
        reaction = await alice.react(room_id, ok, "👍")
        await alice.wait_for_event(room_id, status_of(reaction, "SUCCESS"))
        redaction = await alice.redact(room_id, ok)
        await alice.wait_for_event(room_id, status_of(redaction, "SUCCESS"))
        assert [i.kind for i in net.sent if i.kind in ("reaction", "redaction")] == [
            "reaction",
            "redaction",
        ]


async def test_edit_past_the_window_never_reaches_the_network(
    make_bridge: Any, bridge_env: BridgeEnv, uid
):
    bridge: Bridge = await make_bridge(**{"bridge.message_status_events": True})
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, chat, room_id, net = scene
        net.capabilities[chat] = RoomCapabilities(edit_max_age=2)
        first = await alice.send_text(room_id, "teh typo")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == first)

        def edit(body: str) -> dict[str, Any]:
            return {
                "msgtype": "m.text",
                "body": f"* {body}",
                "m.new_content": {"msgtype": "m.text", "body": body},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            }

        soon = await alice.send_message(room_id, edit("the typo"))
        await alice.wait_for_event(room_id, status_of(soon, "SUCCESS"))
        await asyncio.sleep(2.5)
        late = await alice.send_message(room_id, edit("the typo, later"))
        evt = await alice.wait_for_event(room_id, status_of(late))
        assert evt["content"]["status"] == "FAIL_PERMANENT"
        assert evt["content"]["reason"] == "com.beeper.unsupported_event"
        assert "2 seconds" in evt["content"]["message"]
        edits = [i for i in net.sent if i.kind == "edit"]
        assert [e.data.event_id for e in edits] == [soon]


async def test_read_only_room_refuses_early(make_bridge: Any, bridge_env: BridgeEnv, uid):
    bridge: Bridge = await make_bridge(**{"bridge.message_status_events": True})
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, chat, room_id, net = scene
        before = await alice.send_text(room_id, "before the channel went quiet")
        await alice.wait_for_event(room_id, status_of(before, "SUCCESS"))
        net.capabilities[chat] = RoomCapabilities(
            read_only=True, read_only_reason="the channel is moderated and you have no voice"
        )
        sent_before = len(net.sent)
        quiet = await alice.send_text(room_id, "may I?")
        evt = await alice.wait_for_event(room_id, status_of(quiet))
        assert evt["content"]["status"] == "FAIL_PERMANENT"
        assert evt["content"]["reason"] == "m.no_permission"
        assert "moderated" in evt["content"]["message"]
        await alice.wait_for_event(room_id, notice_says("moderated and you have no voice"))
        reaction = await alice.react(room_id, before, "👍")
        evt = await alice.wait_for_event(room_id, status_of(reaction))
        assert evt["content"]["reason"] == "m.no_permission"
        assert net.sent[sent_before:] == []


async def test_large_file_refused_and_formatting_dropped(
    make_bridge: Any, bridge_env: BridgeEnv, uid
):
    bridge: Bridge = await make_bridge(**{"bridge.message_status_events": True})
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, chat, room_id, net = scene
        net.capabilities[chat] = RoomCapabilities(max_file_size=1000, formatting=False)
        big = await alice.send_message(
            room_id,
            {
                "msgtype": "m.file",
                "body": "big.bin",
                "url": "mxc://example.org/big",
                "info": {"size": 5000},
            },
        )
        evt = await alice.wait_for_event(room_id, status_of(big))
        assert evt["content"]["status"] == "FAIL_PERMANENT"
        assert evt["content"]["reason"] == "com.beeper.unsupported_event"
        styled = await alice.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "hi *there*",
                "format": "org.matrix.custom.html",
                "formatted_body": "hi <em>there</em>",
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == styled)
        assert sent.data.content.body == "hi *there*" and sent.data.content.html is None
        assert not any(i.data.event_id == big for i in net.sent if i.kind == "message")


async def test_status_events_off_by_default_notice_stays(bridge: Bridge, bridge_env, uid):
    """Like bridgev2 (``message_status_events: false``): only the notice says a failure."""
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, _chat, room_id, net = scene
        ok = await alice.send_text(room_id, "first")  # the room's joins have gone through
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == ok)
        net.fail_next_send = SendRefused("no such chat")
        failed = await alice.send_text(room_id, "into the void")
        await alice.wait_for_event(room_id, notice_says("your message was not delivered"))
        # The status event would have been sent before the notice: none is in the room.
        assert alice._find(room_id, status_of(failed)) is None


async def test_error_notices_can_be_turned_off(make_bridge: Any, bridge_env: BridgeEnv, uid):
    """For rooms whose clients all show status events: the failure is the status alone."""
    bridge: Bridge = await make_bridge(
        **{"bridge.message_status_events": True, "bridge.message_error_notices": False}
    )
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, _client, _chat, room_id, net = scene
        ok = await alice.send_text(room_id, "first")
        await alice.wait_for_event(room_id, status_of(ok, "SUCCESS"))
        net.fail_next_send = SendRefused("no such chat")
        failed = await alice.send_text(room_id, "into the void")
        await alice.wait_for_event(room_id, status_of(failed, "FAIL_PERMANENT"))
        after = await alice.send_text(room_id, "after")
        await alice.wait_for_event(room_id, status_of(after, "SUCCESS"))
        assert alice._find(room_id, notice_says("not delivered")) is None
