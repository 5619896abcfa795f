"""Unit tests: the upload and catch-up helpers, the new config keys, server error conditions."""

from __future__ import annotations

import asyncio
from xml.etree import ElementTree as ET

import pytest
from slixmpp import Iq, Message

from bridges.xmpp import config as cfg
from bridges.xmpp import mam
from bridges.xmpp.mam import CatchUps
from bridges.xmpp.outbound import _upload_max_size, upload_filename
from bridges.xmpp.stanza_errors import error_condition

ROOM = "room@muc.example.org"


def groupchat(nick: str, sid: str) -> Message:
    msg = Message()
    msg["from"] = f"{ROOM}/{nick}"
    msg["to"] = "alice_example.org@matrix.example.org/bridgekit"
    msg["type"] = "groupchat"
    msg["body"] = sid
    ET.SubElement(msg.xml, "{urn:xmpp:sid:0}stanza-id", {"id": sid, "by": ROOM})
    return msg


async def test_live_messages_are_held_during_the_catch_up_then_released_once():
    released: list[str] = []
    catchup = CatchUps(lambda msgs: released.extend(m["body"] for m in msgs))
    catchup.expect("login", {ROOM})
    catchup.joining("login", ROOM)
    catchup.started("login", ROOM)
    ours = {"Alice": "login"}
    assert catchup.offer(groupchat("Bob", "s1"), ours)
    assert catchup.offer(groupchat("Bob", "s2"), ours)
    assert not catchup.offer(groupchat("Alice", "echo"), ours)  # our echoes confirm sends
    # Another login's (non-listener) catch-up ending does not release the room.
    catchup.finish("other", ROOM, set())
    await asyncio.sleep(0)
    assert released == []
    catchup.finish("login", ROOM, {"s1"})  # s1 came in the archive already
    assert released == []  # not before the runtime has queued the archived messages
    await asyncio.sleep(0)
    assert released == ["s2"]
    assert not catchup.offer(groupchat("Bob", "s3"), ours)  # live again


async def test_a_catch_up_that_never_starts_only_delays(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(mam, "START_TIMEOUT", 0.05)
    released: list[str] = []
    catchup = CatchUps(lambda msgs: released.extend(m["body"] for m in msgs))
    catchup.expect("login", {ROOM})
    catchup.joining("login", ROOM)
    assert catchup.offer(groupchat("Bob", "s1"), {})
    await asyncio.sleep(0.1)
    assert released == ["s1"]
    catchup.joining("login", ROOM)  # no catch-up is expected any more: nothing is held
    assert not catchup.offer(groupchat("Bob", "s2"), {})


async def test_rooms_joined_without_a_pending_catch_up_are_not_held():
    catchup = CatchUps(lambda msgs: None)
    catchup.joining("login", ROOM)
    assert not catchup.offer(groupchat("Bob", "s1"), {})


def test_upload_limits_and_filenames():
    info = ET.fromstring(
        "<query xmlns='http://jabber.org/protocol/disco#info'>"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>"
        "<field var='max-file-size'><value>4096</value></field></x></query>"
    )
    assert _upload_max_size(info) == 4096
    assert _upload_max_size(ET.fromstring("<query xmlns='x'/>")) is None
    assert upload_filename("../etc/passwd") == "_etc_passwd"
    assert upload_filename("a\x00b\\c.png") == "ab_c.png"  # NUL removed, "\\" replaced
    assert upload_filename("") == "file"
    assert len(upload_filename("x" * 500 + ".png")) == 120


def test_new_config_keys():
    base = {
        "component_jid": "matrix.example.org",
        "component_secret": "s",
    }
    assert cfg.validate(base) == []
    assert cfg.setting(base, "http_upload") is True
    assert cfg.setting(base, "auth_retry_delay") == 60
    bad = {**base, "http_upload": "yes", "upload_service": "not a domain", "auth_retry_delay": 0}
    assert {key for key, _ in cfg.validate(bad)} == {
        "http_upload",
        "upload_service",
        "auth_retry_delay",
    }


def test_error_condition_is_read_from_the_servers_element():
    # On a component stream the <error> is in jabber:component:accept, as Prosody sends it.
    iq = Iq(
        xml=ET.fromstring(
            "<iq xmlns='jabber:component:accept' type='error' id='1'>"
            "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Only owners</text></error></iq>"
        )
    )
    assert error_condition(iq) == "forbidden (Only owners)"
