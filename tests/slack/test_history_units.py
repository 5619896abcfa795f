"""Edge cases of bridges/slack/history.py and chats.py helpers (untrusted Slack answers)."""

from __future__ import annotations

import pytest

from bridges.slack.chats import team_icon
from bridges.slack.history import _messages, _next_cursor, _replied_since, ts_key

pytestmark = pytest.mark.engine_independent


def test_ts_key_orders_slack_timestamps_numerically():
    assert ts_key("1712345678.000100") < ts_key("1712345678.000200") < ts_key("1712345679.0")
    assert ts_key("9.500000") < ts_key("10.000000")  # not as strings
    assert ts_key("1712345678.1") == (1712345678, 100000)  # fraction digits, not a count
    assert ts_key("1712345678") == (1712345678, 0)
    for bad in ("", "x.y", "1.2.3", "abc"):
        assert ts_key(bad) == (-1, -1)


def test_malformed_history_answers_yield_no_messages():
    assert _messages({}) == []
    assert _messages({"messages": "nope"}) == []
    good = {"ts": "1.000001", "text": "hi"}
    answer = {"messages": [good, "x", None, {"ts": 5}, {"ts": ""}, {"text": "no ts"}]}
    assert _messages(answer) == [good]
    assert _next_cursor({"response_metadata": "x"}) == ""
    assert _next_cursor({"response_metadata": {"next_cursor": "abc"}}) == "abc"
    assert _next_cursor({}) == ""


def test_a_thread_counts_as_replied_since_only_with_a_newer_reply():
    floor = ts_key("100.000000")
    assert _replied_since({"reply_count": 2, "latest_reply": "100.000001"}, floor)
    assert not _replied_since({"reply_count": 2, "latest_reply": "100.000000"}, floor)
    assert not _replied_since({"reply_count": 0, "latest_reply": "200.0"}, floor)
    assert not _replied_since({"reply_count": 1, "latest_reply": 200}, floor)
    assert not _replied_since({"text": "no thread"}, floor)


def test_team_icon_skips_the_default_and_non_http_urls():
    assert team_icon({}) is None
    assert team_icon({"icon": {"image_230": "https://x/i.png", "image_default": True}}) is None
    assert team_icon({"icon": {"image_230": "javascript:alert(1)"}}) is None
    assert team_icon({"icon": {"image_132": "https://x/i.png"}}) == "https://x/i.png"
    assert team_icon({"icon": "https://x/i.png"}) is None
