"""The event fields a portal reads, checked where the event comes in (matrix_fields)."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.matrix.fields import MAX_ID, MalformedEvent, Relation, check_event, relation


def event(content: dict[str, Any], etype: str = "m.room.message", **top: Any) -> dict[str, Any]:
    return {
        "type": etype,
        "event_id": "$e",
        "sender": "@a:x",
        "room_id": "!r:x",
        "origin_server_ts": 1,
        "content": content,
        **top,
    }


def test_a_well_formed_reply_and_thread_read_as_typed_fields() -> None:
    content = {
        "body": "hi",
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": "$root",
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": "$r"},
        },
    }
    check_event(event(content))
    assert relation(content) == Relation("m.thread", "$root", "$r", None, True)
    assert relation({"body": "x"}) == Relation()


@pytest.mark.parametrize(
    "content, field",
    [
        ({"body": ["x"]}, "body"),
        ({"body": "x", "msgtype": 7}, "msgtype"),
        ({"body": "x", "formatted_body": {"a": 1}}, "formatted_body"),
        ({"body": "x", "m.relates_to": ["$a"]}, "m.relates_to"),
        ({"body": "x", "m.relates_to": {"rel_type": "m.thread", "event_id": ["$a"]}}, "event_id"),
        ({"body": "x", "m.relates_to": {"rel_type": "m.thread", "event_id": 12345}}, "event_id"),
        ({"body": "x", "m.relates_to": {"rel_type": 1, "event_id": "$a"}}, "rel_type"),
        ({"body": "x", "m.relates_to": {"m.in_reply_to": ["$a"]}}, "m.in_reply_to"),
        ({"body": "x", "m.relates_to": {"m.in_reply_to": {"event_id": 5}}}, "m.in_reply_to"),
        ({"body": "x", "m.relates_to": {"is_falling_back": "yes"}}, "is_falling_back"),
        ({"body": "x", "m.relates_to": {"event_id": "$" + "a" * MAX_ID}}, "longer than"),
        ({"body": "x", "m.relates_to": {"event_id": "$a\x00b"}}, "NUL"),
        ({"body": "x", "m.relates_to": {"event_id": "$\ud800"}}, "Unicode"),
        ({"body": "x", "m.new_content": "text"}, "m.new_content"),
        ({"body": "x", "m.new_content": {"body": 1}}, "m.new_content.body"),
    ],
)
def test_a_wrong_type_or_size_is_refused_naming_the_field(content: dict, field: str) -> None:
    with pytest.raises(MalformedEvent, match=field):
        check_event(event(content))


def test_reaction_key_redacts_and_membership_are_checked() -> None:
    with pytest.raises(MalformedEvent, match="key"):
        check_event(event({"m.relates_to": {"event_id": "$a", "key": ["👍"]}}, "m.reaction"))
    with pytest.raises(MalformedEvent, match="redacts"):
        check_event(event({}, "m.room.redaction", redacts=["$a"]))
    with pytest.raises(MalformedEvent, match="membership"):
        check_event(event({"membership": 1}, "m.room.member", state_key="@a:x"))
    with pytest.raises(MalformedEvent, match="origin_server_ts"):
        check_event(event({"body": "x"}, origin_server_ts="soon"))
