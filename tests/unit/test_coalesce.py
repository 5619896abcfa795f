"""Which queued remote lines may share one Matrix event, and what the merged event says."""

from __future__ import annotations

from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    MessagePart,
    PortalKey,
    RemoteEdit,
    RemoteMessage,
)
from bridgekit.outbox.coalesce import MAX_LINES, MAX_SPAN_SECONDS, merge_contents, mergeable

BOB = EventSender("bob")


def line(
    body: str, sender: EventSender = BOB, ts: float | None = 100.0, **content
) -> RemoteMessage:
    return RemoteMessage(
        PortalKey("#chan"), sender, timestamp=ts, id=body, content=MessageContent(body, **content)
    )


def test_plain_lines_of_one_sender_merge() -> None:
    assert mergeable(line("a"), line("b"), 1, 1)
    assert mergeable(line("a", msgtype="m.notice"), line("b", msgtype="m.notice"), 1, 1)


def test_lines_of_different_senders_do_not_merge() -> None:
    assert not mergeable(line("a"), line("b", EventSender("carol")), 1, 1)
    assert not mergeable(line("a"), line("b", EventSender("bob", is_me=True)), 1, 1)


def test_emotes_media_replies_and_mixed_types_do_not_merge() -> None:
    assert not mergeable(line("a", msgtype="m.emote"), line("b", msgtype="m.emote"), 1, 1)
    assert not mergeable(line("a"), line("b", msgtype="m.notice"), 1, 1)
    assert not mergeable(line("a"), line("b", media_url="mxc://x/y"), 1, 1)
    assert not mergeable(line("a"), line("b", reply_to="m0"), 1, 1)
    assert not mergeable(line("a"), line("b", thread_root="root"), 1, 1)


def test_only_plain_messages_merge_not_their_subclasses_or_other_events() -> None:
    edit = RemoteEdit(PortalKey("#chan"), BOB, target_id="a")
    assert not mergeable(line("a"), edit, 1, 1)  # type: ignore[arg-type]


def test_a_merge_stops_at_its_line_and_size_limits() -> None:
    assert not mergeable(line("a"), line("b"), MAX_LINES, 10)
    assert not mergeable(line("a"), line("b" * 100), 1, 7950)


def test_lines_said_far_apart_stay_separate() -> None:
    assert mergeable(line("a", ts=100.0), line("b", ts=100.0 + MAX_SPAN_SECONDS), 1, 1)
    assert not mergeable(line("a", ts=100.0), line("b", ts=100.1 + MAX_SPAN_SECONDS), 1, 1)


def test_merged_content_keeps_line_order_reply_and_every_mention() -> None:
    merged = merge_contents(
        [
            MessageContent("first", reply_to="m0", mentions=["carol"]),
            MessageContent("second", mentions=["dave", "carol"]),
        ]
    )
    assert merged.body == "first\nsecond"
    assert merged.html is None
    assert merged.reply_to == "m0"
    assert merged.mentions == ["carol", "dave"]


def test_merged_html_escapes_the_plain_lines() -> None:
    merged = merge_contents(
        [MessageContent("<b>not bold</b>"), MessageContent("bold", html="<b>bold</b>")]
    )
    assert merged.html == "&lt;b&gt;not bold&lt;/b&gt;<br><b>bold</b>"


def test_a_message_in_parts_does_not_merge() -> None:
    """Its parts are events of their own (message_parts.py), not a line of a merge."""
    parted = line("caption")
    parted.parts = [
        MessagePart("", MessageContent("caption")),
        MessagePart("f", MessageContent("x")),
    ]
    assert not mergeable(line("a"), parted, 1, 1)
    assert not mergeable(parted, line("b"), 1, 1)
