"""Unit tests: stanzas built from Matrix content are well-formed whatever the content."""

from __future__ import annotations

import html
from xml.etree import ElementTree as ET

from bridgekit.contract.events import MessageContent
from bridges.xmpp.connector import XMPPConnector
from bridges.xmpp.outbound import render, stanza_id_for
from tests.xmpp.test_unit_inbound import FakeBridge

CONFIG = {"component_jid": "matrix.example.org", "component_secret": "s"}
NASTY = "</body><x xmlns='jabber:client'/>]]>&amp;\x00\x07\x1b\ud800<![CDATA[" + "\ufffe"


def connector() -> XMPPConnector:
    bridge = FakeBridge()
    bridge.domain = "example.org"  # type: ignore[attr-defined]
    return XMPPConnector(bridge, CONFIG)  # type: ignore[arg-type]


async def test_bodies_are_text_and_stanzas_stay_well_formed() -> None:
    conn = connector()
    # In HTML, markup is markup: Matrix clients escape text, so the text arrives escaped.
    body, xhtml = render(MessageContent(NASTY, html=f"<b>{html.escape(NASTY)}</b><evil/></body>"))
    msg = conn.outbound.text_message(
        "a@matrix.example.org/r",
        "room@muc.example.org",
        "groupchat",
        stanza_id_for("$event"),
        body,
        xhtml,
    )
    conn.outbound.add_reply(msg, "id'\"<>", "room@muc.example.org/nick")
    wire = str(msg)
    parsed = ET.fromstring(wire)  # well-formed
    assert parsed.find("x") is None and parsed.find("evil") is None
    assert parsed.findtext("body") == "*</body><x xmlns='jabber:client'/>]]>&amp;<![CDATA[*"
    xhtml_text = "".join(parsed.find("{http://jabber.org/protocol/xhtml-im}html").itertext())
    assert xhtml_text == "</body><x xmlns='jabber:client'/>]]>&amp;<![CDATA["
    assert parsed.find("{urn:xmpp:reply:0}reply").get("id") == "id'\"<>"


def test_plain_render_and_ids() -> None:
    assert render(MessageContent("a\x00b")) == ("ab", None)
    assert render(MessageContent("waves", msgtype="m.emote"))[0] == "/me waves"
    assert stanza_id_for("$x") == stanza_id_for("$x") != stanza_id_for("$y")


async def test_last_line_of_defence_in_send_raw() -> None:
    conn = connector()
    written: list[bytes] = []
    conn.component.transport = type("T", (), {"write": lambda self, data: written.append(data)})()
    conn.component.send_raw("<message><body>a\x01b\ud800c</body></message>")
    assert written == [b"<message><body>abc</body></message>"]
    conn.component.transport = None


def test_ghost_and_alias_mapping() -> None:
    conn = connector()
    lp = conn.ghost_localpart("Bob@Example.net/Phone")
    assert lp == "_xmpp__bob=40_example.net/_phone"
    assert conn.ghost_remote_id(lp) == "Bob@Example.net/Phone"
    assert conn.ghost_remote_id("_irc_bob") is None
    assert conn.alias_localpart("room@muc.example.org") == "_xmpp_room=40muc.example.org"
    assert conn.room_address("room") is None  # no muc_service configured
    assert conn.room_address("Room@MUC.example.org") == "room@muc.example.org"


async def test_third_party_lookups() -> None:
    conn = connector()
    assert conn.protocol_info()["location_fields"] == ["room"]
    [user] = await conn.lookup_user({"jid": "Bob@example.net"})
    assert user["userid"] == "@_xmpp_bob=40example.net:example.org"
    assert await conn.lookup_user({"jid": "not a jid"}) == []
