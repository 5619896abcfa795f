"""The fake Slack's user-scope event delivery (``message.im`` / ``message.mpim`` for users who
authorised the app), ``apps.event.authorizations.list`` and ``users.lookupByEmail``, driven with
the real slack-sdk."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

pytestmark = pytest.mark.engine_independent


def _client(fake, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url)


async def test_dm_events_reach_the_app_for_users_who_authorised_it(slack_world) -> None:
    w = slack_world
    fake = w.fake
    carol = fake.add_user(w.team.id, "carol")
    dm = fake.add_conversation(w.team.id, kind="im", members=[w.alice.id, w.bob.id], with_bot=False)
    # Nobody of the DM authorised the app: Slack sends the app nothing.
    assert fake.post_user_message(dm.id, w.bob.id, "private") and not fake.envelopes
    alice_token = fake.user_token(w.alice.id)  # Alice installs the app for herself
    fake.post_user_message(dm.id, w.bob.id, "seen by alice")
    [env] = fake.envelopes
    payload = env.payload
    assert payload["event"]["channel_type"] == "im" and payload["event"]["text"] == "seen by alice"
    assert [(a["user_id"], a["is_bot"]) for a in payload["authorizations"]] == [(w.alice.id, False)]
    # Bob authorises too: still one event, naming one of them; the list names both.
    fake.user_token(w.bob.id)
    fake.post_user_message(dm.id, w.alice.id, "seen by both")
    assert len(fake.envelopes) == 2
    payload = fake.envelopes[1].payload
    assert len(payload["authorizations"]) == 1
    app = _client(fake, fake.app_token())
    listed = await app.apps_event_authorizations_list(event_context=payload["event_context"])
    assert {a["user_id"] for a in listed["authorizations"]} == {w.alice.id, w.bob.id}
    with pytest.raises(SlackApiError) as err:
        await app.apps_event_authorizations_list(event_context="4-nope")
    assert err.value.response["error"] == "invalid_event_context"
    # A group DM with the bot names the bot first; a revoked token no longer authorises.
    group = fake.add_conversation(w.team.id, kind="mpim", members=[w.alice.id, carol.id])
    fake.post_user_message(group.id, carol.id, "group")
    assert fake.envelopes[-1].payload["authorizations"][0]["user_id"] == w.team.bot_user_id
    assert fake.envelopes[-1].payload["event"]["channel_type"] == "mpim"
    fake.revoke(alice_token)
    other = fake.add_conversation(
        w.team.id, kind="im", members=[w.alice.id, carol.id], with_bot=False
    )
    before = len(fake.envelopes)
    fake.post_user_message(other.id, carol.id, "unseen")
    assert len(fake.envelopes) == before
    # Channels the bot is not in stay unseen whoever authorised the app.
    secret = fake.add_conversation(
        w.team.id, "secret", kind="private", members=[w.bob.id], with_bot=False
    )
    fake.post_user_message(secret.id, w.bob.id, "hidden")
    assert len(fake.envelopes) == before


async def test_users_lookup_by_email(slack_world) -> None:
    fake = slack_world.fake
    carol = fake.add_user(slack_world.team.id, "carol", email="Carol@Acme.test")
    client = _client(fake, slack_world.bot_token)
    found = await client.users_lookupByEmail(email="carol@acme.test")
    assert found["user"]["id"] == carol.id and found["user"]["profile"]["email"] == carol.email
    with pytest.raises(SlackApiError) as err:
        await client.users_lookupByEmail(email="nobody@acme.test")
    assert err.value.response["error"] == "users_not_found"
