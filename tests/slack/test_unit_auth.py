"""Edge cases of the auth pieces beside their end-to-end tests: payload shapes, Retry-After
parsing, the events_api config section, the dead-token notice."""

from __future__ import annotations

import pytest
from slack_sdk.http_retry.response import HttpResponse

from bridges.slack import config as cfg
from bridges.slack.credentials import dead_notice
from bridges.slack.envelopes import payload_problem
from bridges.slack.ratelimit import MAX_RETRY_AFTER, method_of, retry_after

pytestmark = pytest.mark.engine_independent

GOOD = {
    "type": "event_callback",
    "team_id": "T0001",
    "event_id": "Ev0ABC",
    "event": {"type": "message", "channel": "C0001", "user": "U0001", "ts": "1.000100"},
}


def with_event(**fields):
    return {**GOOD, "event": {**GOOD["event"], **fields}}


@pytest.mark.parametrize(
    "payload",
    [
        GOOD,
        with_event(text="hi", thread_ts="1.000001", subtype="thread_broadcast"),
        # other events carry objects where messages carry ids: left to their handlers
        {**GOOD, "event": {"type": "channel_created", "channel": {"id": "C9", "name": "x"}}},
        {**GOOD, "event": {"type": "user_change", "user": {"id": "U9", "name": "y"}}},
        {**GOOD, "event": {"type": "reaction_added", "item": {"channel": "C1", "ts": "2.0"}}},
    ],
)
def test_good_payloads_pass(payload):
    assert payload_problem(payload) is None


@pytest.mark.parametrize(
    "payload,why",
    [
        (None, "not an object"),
        ([GOOD], "not an object"),
        ({**GOOD, "type": "url_verification"}, "not an event"),
        ({**GOOD, "event_id": 7}, "event_id"),
        ({**GOOD, "event_id": "Ev 1\n"}, "event_id"),
        ({**GOOD, "team_id": "t0001"}, "team_id"),
        ({**GOOD, "event": None}, "no event"),
        ({**GOOD, "event": {"channel": "C1"}}, "no type"),
        (with_event(channel="c1; DROP"), "event.channel"),
        (with_event(user=["U1"]), "event.user"),
        (with_event(ts=1.5), "event.ts"),
        (with_event(ts="1.5e3"), "event.ts"),
        (with_event(text=["x"]), "event.text"),
        (with_event(files="F1"), "event.files"),
        (with_event(subtype=3), "subtype"),
        (with_event(channel=None), "without channel"),
        (with_event(message=[1]), "event.message"),
        (with_event(message={"user": "../x"}), "event.message.user"),
        ({**GOOD, "event": {"type": "reaction_added", "item": {"ts": "x"}}}, "event.item.ts"),
    ],
)
def test_malformed_payloads_are_named(payload, why):
    problem = payload_problem(payload)
    assert problem is not None and why in problem


@pytest.mark.parametrize(
    "headers,seconds",
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "0"}, 0.0),
        ({}, 1.0),
        ({"Retry-After": "soon"}, 1.0),
        ({"Retry-After": "-5"}, 0.0),
        ({"Retry-After": "99999999"}, MAX_RETRY_AFTER),
    ],
)
def test_retry_after_is_read_and_bounded(headers, seconds):
    assert retry_after(HttpResponse(status_code=429, headers=headers)) == seconds


def test_method_of_an_api_url():
    assert method_of("https://slack.com/api/chat.postMessage?x=1") == "chat.postMessage"
    assert method_of("http://127.0.0.1:9/api/auth.test") == "auth.test"


@pytest.mark.parametrize(
    "section,key",
    [
        ({"events_api": "on"}, "events_api"),
        ({"events_api": {"port": 0}}, "events_api.port"),
        ({"events_api": {"port": "80"}}, "events_api.port"),
        ({"events_api": {"path": "slack"}}, "events_api.path"),
        ({"events_api": {"enabled": "yes"}}, "events_api.enabled"),
        ({"events_api": {"max_body": 10}}, "events_api.max_body"),
        ({"events_api": {"secret": "x"}}, "events_api.secret"),
    ],
)
def test_events_api_config_is_checked(section, key):
    assert key in [k for k, _ in cfg.validate(section)]


def test_events_api_is_off_by_default():
    assert cfg.validate({}) == []
    assert cfg.events_api({})["enabled"] is False
    assert cfg.validate({"events_api": {"enabled": True, "port": 8080}}) == []


def test_the_dead_token_notice_says_which_token_and_what_to_do():
    text = dead_notice("app-level token", "token_revoked", "app")
    assert "app-level token was revoked (token_revoked)" in text
    assert "login slack app" in text and "will not retry" in text
