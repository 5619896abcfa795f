"""Remote events survive the durable outbox: JSON round-trips for every RemoteEvent type."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from bridgekit.contract import events as ev
from bridgekit.contract.events import (
    ChatInfo,
    ChatMember,
    EventSender,
    MessageContent,
    MessagePart,
    PortalKey,
    RemoteBackfill,
    RemoteChatInfoChange,
    RemoteChatResync,
    RemoteEdit,
    RemoteEvent,
    RemoteMembership,
    RemoteMessage,
    RemotePresence,
    RemoteReaction,
    RemoteReactionRemove,
    RemoteReceipt,
    RemoteRedaction,
    RemoteTyping,
    RemoteUserInfoChange,
    SpaceInfo,
    remote_event_from_json,
    remote_event_to_json,
)

PORTAL = PortalKey("chat/ünï", "login-1")
SENDER = EventSender("bob", is_me=True, login_id="login-1")


def content(n: int = 1) -> MessageContent:
    return MessageContent(
        body=f"hello {n} 🎉",
        html=f"<b>hello {n}</b>",
        msgtype="m.image",
        media_url="mxc://example.org/abc",
        media_info={"mimetype": "image/png", "size": 42, "w": 1, "thumbnail": {"h": 2}},
        reply_to="m0",
        thread_root="root",
        mentions=["alice", "carol"],
        mentions_room=True,
    )


def message(n: int) -> RemoteMessage:
    return RemoteMessage(
        portal=PortalKey(f"chat{n}", ""),
        sender=EventSender(f"user{n}"),
        timestamp=1700000000.5 + n,
        network="fake",
        id=f"m{n}",
        content=content(n),
    )


def common() -> dict[str, object]:
    return {"portal": PORTAL, "sender": SENDER, "timestamp": 1712345678.25, "network": "fake"}


# One sample per RemoteEvent type, every field set to something other than its default.
SAMPLES: dict[type[RemoteEvent], Callable[[], RemoteEvent]] = {
    RemoteMessage: lambda: RemoteMessage(
        **common(),
        id="m1",
        content=content(),
        parts=[MessagePart("", content(3)), MessagePart("file-1", content(4))],
    ),
    RemoteEdit: lambda: RemoteEdit(
        **common(), target_id="m1", content=content(2), target_part="file-1"
    ),
    RemoteRedaction: lambda: RemoteRedaction(**common(), target_id="m1", reason="spam"),
    RemoteReaction: lambda: RemoteReaction(
        **common(),
        target_id="m1",
        key="👍",
        emoji_id="e123",
        emoji_url="https://example.org/party.png",
        emoji_name="party",
    ),
    RemoteReactionRemove: lambda: RemoteReactionRemove(
        **common(), target_id="m1", key="👍", emoji_id="e123"
    ),
    RemoteTyping: lambda: RemoteTyping(**common(), typing=False, timeout_ms=1234),
    RemoteReceipt: lambda: RemoteReceipt(**common(), last_read_id="m9"),
    RemotePresence: lambda: RemotePresence(**common(), presence="unavailable", status_msg="away"),
    RemoteChatInfoChange: lambda: RemoteChatInfoChange(
        **common(),
        name="New name",
        topic="New topic",
        avatar_url="mxc://example.org/av",
        joinable=False,
    ),
    RemoteMembership: lambda: RemoteMembership(
        **common(), target="carol", membership="ban", reason="rude", power_level=50
    ),
    RemoteChatResync: lambda: RemoteChatResync(
        **common(),
        info=ChatInfo(
            name="General",
            topic="Talk",
            avatar_url="mxc://example.org/g",
            members=[
                ChatMember("alice", power_level=100, is_me=True, name="Alice"),
                ChatMember("bob", power_level=0, is_me=False, name=None),
            ],
            members_complete=True,
            is_dm=True,
            dm_user="alice",
            joinable=False,
            alias="general",
            parent=SpaceInfo("ws-1", "Acme", "All of Acme", "mxc://example.org/ws", "login-1"),
        ),
    ),
    RemoteBackfill: lambda: RemoteBackfill(
        **common(), messages=[message(1), message(2)], direction="backward", anchor="m7"
    ),
    RemoteUserInfoChange: lambda: RemoteUserInfoChange(
        **common(), name="Bob B", avatar_url="https://example.org/bob.png", is_bot=True
    ),
}


def all_remote_event_types() -> set[type[RemoteEvent]]:
    found: set[type[RemoteEvent]] = set()
    todo = list(RemoteEvent.__subclasses__())
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return {c for c in found if c.__module__ == ev.__name__}


def test_there_is_a_sample_for_every_remote_event_type() -> None:
    assert set(SAMPLES) == all_remote_event_types()


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_sample_sets_every_field_to_a_non_default_value(cls: type[RemoteEvent]) -> None:
    """Guards the round-trip test: a field left at its default would prove nothing."""
    sample = SAMPLES[cls]()
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert getattr(sample, f.name) != f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert getattr(sample, f.name) != f.default_factory(), f.name


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_remote_event_round_trips_through_json(cls: type[RemoteEvent]) -> None:
    event = SAMPLES[cls]()
    restored = remote_event_from_json(remote_event_to_json(event))
    assert type(restored) is cls
    assert restored == event


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_remote_event_json_names_its_kind(cls: type[RemoteEvent]) -> None:
    data = json.loads(remote_event_to_json(SAMPLES[cls]()))
    assert data["kind"] == cls.kind


def test_event_kinds_are_unique() -> None:
    kinds = [cls.kind for cls in SAMPLES]
    assert len(kinds) == len(set(kinds))


def test_nested_values_come_back_as_their_own_types() -> None:
    restored = remote_event_from_json(remote_event_to_json(SAMPLES[RemoteBackfill]()))
    assert isinstance(restored, RemoteBackfill)
    assert isinstance(restored.portal, PortalKey)
    assert isinstance(restored.sender, EventSender)
    assert all(type(m) is RemoteMessage for m in restored.messages)
    assert all(isinstance(m.content, MessageContent) for m in restored.messages)
    assert all(isinstance(m.portal, PortalKey) for m in restored.messages)

    resync = remote_event_from_json(remote_event_to_json(SAMPLES[RemoteChatResync]()))
    assert isinstance(resync, RemoteChatResync)
    assert isinstance(resync.info, ChatInfo)
    assert all(isinstance(m, ChatMember) for m in resync.info.members)
    assert isinstance(resync.info.parent, SpaceInfo)


def test_restored_portal_key_is_usable_as_a_dict_key() -> None:
    restored = remote_event_from_json(remote_event_to_json(SAMPLES[RemoteMessage]()))
    assert {restored.portal: 1}[PORTAL] == 1


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_event_with_defaults_and_no_sender_round_trips(cls: type[RemoteEvent]) -> None:
    event = cls(PortalKey("c"))
    assert remote_event_from_json(remote_event_to_json(event)) == event


def test_resync_without_info_round_trips() -> None:
    event = RemoteChatResync(PortalKey("c"), info=None)
    assert remote_event_from_json(remote_event_to_json(event)) == event


def test_unknown_fields_in_stored_json_are_ignored() -> None:
    """An outbox row written by a newer version must still load."""
    data = json.loads(remote_event_to_json(SAMPLES[RemoteMessage]()))
    data["future_field"] = 1
    data["content"]["future_content_field"] = 2
    assert remote_event_from_json(json.dumps(data)) == SAMPLES[RemoteMessage]()


def test_json_is_compact_and_keeps_unicode_readable() -> None:
    raw = remote_event_to_json(SAMPLES[RemoteReaction]())
    assert "👍" in raw
    assert ", " not in raw


def test_parts_come_back_as_parts_in_order() -> None:
    restored = remote_event_from_json(remote_event_to_json(SAMPLES[RemoteMessage]()))
    assert isinstance(restored, RemoteMessage)
    assert [type(p) for p in restored.parts] == [MessagePart, MessagePart]
    assert [p.id for p in restored.parts] == ["", "file-1"]
    assert all(isinstance(p.content, MessageContent) for p in restored.parts)
    assert restored.parts[1].content.body == "hello 4 🎉"


def test_a_message_stored_before_parts_existed_is_one_part() -> None:
    """An outbox row written by the previous version (no ``parts``) still loads and sends."""
    data = json.loads(remote_event_to_json(RemoteMessage(PORTAL, id="m1", content=content())))
    del data["parts"]
    restored = remote_event_from_json(json.dumps(data))
    assert isinstance(restored, RemoteMessage)
    assert restored.message_parts() == [MessagePart("", content())]


def test_malformed_parts_in_stored_json_are_dropped() -> None:
    data = json.loads(remote_event_to_json(SAMPLES[RemoteMessage]()))
    data["parts"].insert(1, "not a part")
    restored = remote_event_from_json(json.dumps(data))
    assert isinstance(restored, RemoteMessage)
    assert [p.id for p in restored.parts] == ["", "file-1"]


def test_message_parts_first_is_unnamed_and_ids_are_unique() -> None:
    msg = RemoteMessage(
        PORTAL,
        parts=[
            MessagePart("caption", MessageContent("a")),
            MessagePart("", MessageContent("b")),
            MessagePart("x", MessageContent("c")),
            MessagePart("x", MessageContent("d")),
        ],
    )
    parts = msg.message_parts()
    assert [p.content.body for p in parts] == ["a", "b", "c", "d"]
    assert parts[0].id == ""
    assert len({p.id for p in parts}) == 4
    assert parts[2].id == "x"
