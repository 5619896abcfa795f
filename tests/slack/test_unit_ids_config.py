"""Slack ids <-> bridgekit ids, and the networks.slack config checks."""

from __future__ import annotations

import pytest

from bridgekit.contract.events import PortalKey
from bridges.slack import config as cfg
from bridges.slack.connector import SlackConnector
from bridges.slack.ids import (
    chat_rid,
    parse_chat_rid,
    parse_user_rid,
    portal_key,
    user_rid,
)

pytestmark = pytest.mark.engine_independent


def test_user_ids_are_lower_case_and_reversible():
    rid = user_rid("T0ABC", "U0XYZ")
    assert rid == "t0abc-u0xyz"
    assert parse_user_rid(rid) == ("T0ABC", "U0XYZ")


@pytest.mark.parametrize(
    "bad", ["", "t0abc", "t0abc-", "-u1", "t0abc-u0xyz-x", "T0ABC-U0XYZ", "t0-u@1"]
)
def test_foreign_ids_are_not_parsed(bad):
    assert parse_user_rid(bad) is None
    assert parse_chat_rid(bad) is None


def test_channels_share_a_portal_and_dms_belong_to_a_login():
    assert portal_key("T1A", "C2B") == PortalKey(chat_rid("T1A", "C2B"), "")
    assert portal_key("T1A", "D3C", "login-1").receiver == "login-1"
    assert parse_chat_rid(chat_rid("T1A", "C2B")) == ("T1A", "C2B")


def test_ghost_localparts_round_trip_through_the_connector():
    connector = SlackConnector.__new__(SlackConnector)
    connector.config = {}
    rid = user_rid("T1A", "U2B")
    localpart = connector.ghost_localpart(rid)
    assert localpart == "_slack_t1a-u2b"
    assert connector.ghost_remote_id(localpart) == rid
    assert connector.ghost_remote_id("_xmpp_t1a-u2b") is None


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"api_url": "ftp://x/"}, "api_url"),
        ({"api_url": "http://127.0.0.1:1/api"}, "api_url"),
        ({"ghost_template": "_slack_"}, "ghost_template"),
        ({"rate_limit_retries": -1}, "rate_limit_retries"),
        ({"member_list_limit": "many"}, "member_list_limit"),
        ({"typo_key": 1}, "typo_key"),
    ],
)
def test_config_problems_are_named(section, key):
    assert key in [k for k, _ in cfg.validate(section)]


def test_defaults_are_valid():
    assert cfg.validate({}) == []
    assert cfg.validate({"enabled": True, "api_url": "http://127.0.0.1:9/api/"}) == []
