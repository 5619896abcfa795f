"""Unit tests: XEP-0106 escaping, puppet JIDs, XML-safe text, the config section."""

from __future__ import annotations

import pytest

from bridges.xmpp import config as cfg
from bridges.xmpp.connector import XMPPConnector
from bridges.xmpp.jid import (
    PuppetTemplate,
    clean_text,
    escape_node,
    parse_jid,
    parse_room_jid,
    unescape_node,
)


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("simple", "simple"),
        ("o'brien", "o\\27brien"),
        ("a b", "a\\20b"),
        ("x@y", "x\\40y"),
        ("c:\\net", "c\\3a\\net"),
        ("c:\\5c", "c\\3a\\5c5c"),
        ('</>&"', "\\3c\\2f\\3e\\26\\22"),
    ],
)
def test_xep0106_escaping_round_trips(raw: str, escaped: str) -> None:
    assert escape_node(raw) == escaped
    assert unescape_node(escaped) == raw


def test_puppet_template_both_ways() -> None:
    tpl = PuppetTemplate("{localpart}_{server}", "matrix.example.org")
    jid = tpl.jid_for("@o'brien_x:example.com:8448")
    assert jid == "o\\27brien_x_example.com\\3a8448@matrix.example.org"
    assert parse_jid(jid) is not None
    assert tpl.mxid_for(jid.split("@")[0], "default.org") == "@o'brien_x:example.com:8448"
    assert tpl.mxid_for("nounderscore", "d") is None


def test_clean_text_removes_what_xml_cannot_carry() -> None:
    assert clean_text("a\x00b\x07c\x1b\ufffed\ud800e\tf\ng") == "abcde\tf\ng"
    assert clean_text("</body><x/>") == "</body><x/>"  # escaping is slixmpp's job, not removal
    assert clean_text(None) == ""


def test_parse_jid_never_raises() -> None:
    assert parse_jid("") is None
    assert parse_jid("a@b@c") is None
    assert parse_jid("bad\x00@x") is None
    assert parse_room_jid("room@muc.example.org") is not None
    assert parse_room_jid("room@muc.example.org/nick") is None
    assert parse_room_jid("muc.example.org") is None


def test_validate_config() -> None:
    problems = dict(cfg.validate({}))
    assert set(problems) == {"component_jid", "component_secret"}
    good = {"component_jid": "matrix.example.org", "component_secret": "s"}
    assert cfg.validate(good) == []
    bad = dict(
        cfg.validate(
            {
                **good,
                "server_port": 0,
                "ghost_template": "xmpp_{id}",
                "user_jid_template": "{server}",
                "avatars": "yes",
                "follow_room_access": "no",
                "muc_service": "not a domain",
                "max_body_bytes": 10,
                "typo": 1,
            }
        )
    )
    assert set(bad) == {
        "server_port",
        "ghost_template",
        "user_jid_template",
        "avatars",
        "follow_room_access",
        "muc_service",
        "max_body_bytes",
        "typo",
    }


def test_namespaces_work_on_an_empty_section() -> None:
    ghosts, aliases = XMPPConnector.namespace_templates({"enabled": True})
    assert ghosts == ["_xmpp_{jid}"] and aliases == ["_xmpp_{jid}"]
    custom = XMPPConnector.namespace_templates({"ghost_template": "_x_{jid}"})
    assert custom[0] == ["_x_{jid}"]
