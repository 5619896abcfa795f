"""The status event content (bridgev2's field names) and the capability checks' edges."""

from __future__ import annotations

from bridgekit.contract.connector import RoomCapabilities, SendRefused
from bridgekit.contract.events import MessageContent
from bridgekit.database.records import MessageRow
from bridgekit.matrix.message_status import (
    Reason,
    Status,
    refused_edit,
    refused_message,
    status_content,
)


def test_content_has_bridgev2_fields_and_leaves_empty_ones_out():
    content = status_content("irc", "$ev", Status.FAIL, Reason.NO_PERMISSION, "muted")
    assert content == {
        "m.relates_to": {"rel_type": "m.reference", "event_id": "$ev"},
        "network": "irc",
        "status": "FAIL_PERMANENT",
        "reason": "m.no_permission",
        "message": "muted",
    }
    assert status_content("irc", "$ev", Status.SUCCESS) == {
        "m.relates_to": {"rel_type": "m.reference", "event_id": "$ev"},
        "network": "irc",
        "status": "SUCCESS",
    }


def test_send_refused_defaults_to_a_permanent_network_error():
    e = SendRefused("no such nick")
    assert str(e) == "no such nick" and e.reason == "m.foreign_network_error"
    assert not e.retriable


def row(ts: int) -> MessageRow:
    return MessageRow("fake", None, "r1", "", "$t", "!r", "@a:x", "a", ts)  # type: ignore[arg-type]


def test_edit_window_and_refusals():
    check = refused_edit
    evt = {"origin_server_ts": 10_000}
    assert check(RoomCapabilities(), evt, row(1_000)) is None
    assert check(RoomCapabilities(edit_max_age=9), evt, row(1_000)) is None
    assert check(RoomCapabilities(edit_max_age=8), evt, row(1_000))[0] == Reason.UNSUPPORTED
    assert check(RoomCapabilities(edits=False), evt, row(9_999))[0] == Reason.UNSUPPORTED
    assert check(RoomCapabilities(read_only=True), evt, row(9_999))[0] == Reason.NO_PERMISSION
    # A target of unknown time (0) is not refused for its age.
    assert check(RoomCapabilities(edit_max_age=1), evt, row(0)) is None


def test_file_size_declared_by_the_client_only():
    check = refused_message
    caps = RoomCapabilities(max_file_size=100)
    big = MessageContent("f", media_url="mxc://x/y", media_info={"size": 101})
    assert check(caps, big)[0] == Reason.UNSUPPORTED
    assert check(caps, MessageContent("f", media_url="mxc://x/y", media_info={"size": 100})) is None
    for size in ("101", True, None, 1.5e9):  # junk sizes: not a reason to refuse
        assert (
            check(caps, MessageContent("f", media_url="mxc://x/y", media_info={"size": size}))
            is None
        )
    assert check(caps, MessageContent("text without media")) is None
