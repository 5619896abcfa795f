"""``MessageContent.mentions_room`` (a network's everyone-mention -> ``m.mentions.room``)
survives the outbox JSON and a merged backlog."""

from __future__ import annotations

from bridgekit.contract.events import (
    MessageContent,
    PortalKey,
    RemoteMessage,
    remote_event_from_json,
    remote_event_to_json,
)
from bridgekit.outbox.coalesce import merge_contents


def test_mentions_room_round_trips_and_merges() -> None:
    msg = RemoteMessage(PortalKey("c"), id="m1", content=MessageContent("hi", mentions_room=True))
    back = remote_event_from_json(remote_event_to_json(msg))
    assert isinstance(back, RemoteMessage) and back.content.mentions_room is True
    merged = merge_contents([MessageContent("a"), MessageContent("b", mentions_room=True)])
    assert merged.mentions_room is True
    assert merge_contents([MessageContent("a"), MessageContent("b")]).mentions_room is False
