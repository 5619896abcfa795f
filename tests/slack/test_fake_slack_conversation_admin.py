"""The fake Slack's ``conversations.rename`` / ``setTopic`` / ``setPurpose`` / ``mark``
(tests/harness/slack_fake/conversation_admin.py), driven with the real slack-sdk: Slack's name
rules and errors, the events and messages each change emits, read markers, and
``missing_scope`` for a token a test gave fewer scopes."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

pytestmark = pytest.mark.engine_independent


def _client(fake, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url)


async def _error(call) -> str:
    with pytest.raises(SlackApiError) as e:
        await call
    return str(e.value.response["error"])


async def test_rename_follows_slacks_rules_and_emits_what_slack_does(slack_world) -> None:
    w = slack_world
    fake, ch = w.fake, w.general.id
    alice = _client(fake, fake.user_token(w.alice.id))
    fake.add_conversation(w.team.id, "random", members=[w.bob.id])
    for name, error in [
        ("", "invalid_name_required"),
        ("Town Square", "invalid_name_specials"),
        ("a" * 81, "invalid_name_maxlength"),
        ("--", "invalid_name_punctuation"),
        ("random", "name_taken"),
    ]:
        assert await _error(alice.conversations_rename(channel=ch, name=name)) == error
    assert not fake.envelopes and fake.conversations[ch].name == "general"
    resp = await alice.conversations_rename(channel=ch, name="town-square")
    assert resp["channel"]["name"] == "town-square"
    events = [e.payload["event"] for e in fake.envelopes]
    assert [(e["type"], e.get("subtype")) for e in events] == [
        ("message", "channel_name"),
        ("channel_rename", None),
    ]
    assert events[0]["user"] == w.alice.id and events[0]["name"] == "town-square"
    assert events[1]["channel"]["name"] == "town-square"
    dm = fake.add_conversation(w.team.id, kind="im", members=[w.alice.id, w.bob.id])
    error = await _error(alice.conversations_rename(channel=dm.id, name="x"))
    assert error == "method_not_supported_for_channel_type"


async def test_topic_and_purpose_post_their_messages(slack_world) -> None:
    w = slack_world
    fake, ch = w.fake, w.general.id
    alice = _client(fake, fake.user_token(w.alice.id))
    resp = await alice.conversations_setTopic(channel=ch, topic="release on Friday")
    assert resp["channel"]["topic"]["value"] == "release on Friday"
    await alice.conversations_setPurpose(channel=ch, purpose="where we talk")
    await alice.conversations_setTopic(channel=ch, topic="release on Friday")  # no change
    events = [e.payload["event"] for e in fake.envelopes]
    assert [(e.get("subtype"), e.get("user")) for e in events] == [
        ("channel_topic", w.alice.id),
        ("channel_purpose", w.alice.id),
    ]
    assert await _error(alice.conversations_setTopic(channel=ch, topic="t" * 251)) == "too_long"


async def test_mark_keeps_the_callers_read_marker_and_checks_scopes(slack_world) -> None:
    w = slack_world
    fake, ch = w.fake, w.general.id
    token = fake.user_token(w.alice.id)
    alice = _client(fake, token)
    msg = fake.post_user_message(ch, w.bob.id, "read me")
    before = len(fake.envelopes)
    await alice.conversations_mark(channel=ch, ts=msg.ts)
    assert fake.read_mark(w.alice.id, ch) == msg.ts and fake.read_mark(w.bob.id, ch) is None
    assert len(fake.envelopes) == before  # apps hear nothing of read markers
    assert await _error(alice.conversations_mark(channel=ch, ts="soon")) == "invalid_timestamp"
    fake.restrict_scopes(token, {"chat:write"})
    with pytest.raises(SlackApiError) as e:
        await alice.conversations_mark(channel=ch, ts=msg.ts)
    assert e.value.response["error"] == "missing_scope"
    assert e.value.response["needed"] == "channels:write"
    assert e.value.response["provided"] == "chat:write"
    error = await _error(alice.conversations_rename(channel=ch, name="other"))
    assert error == "missing_scope"
