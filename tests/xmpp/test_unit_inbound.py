"""Unit tests: incoming stanzas -> remote events, and bad input, without a server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from slixmpp import Message

from bridgekit.contract.events import (
    PortalKey,
    RemoteEdit,
    RemoteMessage,
    RemoteReaction,
    RemoteReactionRemove,
    RemoteRedaction,
    RemoteTyping,
)
from bridges.xmpp import config as cfg
from bridges.xmpp.idmap import IdMap
from bridges.xmpp.inbound import Inbound
from bridges.xmpp.muc import MucManager
from bridges.xmpp.muc_room import Occupant

PUPPET = "alice_example.org@matrix.example.org"
NS = "jabber:component:accept"


class FakeBridge:
    def __init__(self) -> None:
        self.kv: dict[str, str] = {}

    async def get_kv(self, key: str) -> str | None:
        return self.kv.get(key)

    async def set_kv(self, key: str, value: str | None) -> None:
        if value is None:
            self.kv.pop(key, None)
        else:
            self.kv[key] = value


class FakeConnector:
    name = "xmpp"
    component_jid = "matrix.example.org"

    def __init__(self) -> None:
        self.bridge = FakeBridge()
        self.idmap = IdMap(self.bridge)  # type: ignore[arg-type]
        self.muc = MucManager(self)  # type: ignore[arg-type]
        self.events: list[tuple[str | None, Any]] = []
        self.errors: list[str] = []
        self.echoes: list[tuple[str, str]] = []
        self.receipts: list[str] = []
        self.client = SimpleNamespace(login=SimpleNamespace(id="L1"))
        self.outbound = SimpleNamespace(
            on_echo=lambda portal, sent, canonical: self.echoes.append((sent, canonical)),
            on_error=lambda msg: self.errors.append("error-reply"),
            send_receipt=lambda frm, to, mid: self.receipts.append(mid),
        )

    def setting(self, key: str) -> Any:
        return cfg.DEFAULTS[key]

    def client_by_jid(self, bare: str) -> Any:
        return self.client if bare == PUPPET else None

    async def queue(self, login_id: str | None, event: Any) -> None:
        event.network = self.name
        self.events.append((login_id, event))

    def send_error(self, stanza: Any, condition: str, text: str = "") -> None:
        self.errors.append(condition)

    def contact_name(self, jid: str) -> str | None:
        return None


def stanza(xml: str) -> Message:
    return Message(xml=ET.fromstring(xml))


def chat(
    body_xml: str,
    frm: str = "bob@example.net/phone",
    to: str = PUPPET,
    mid: str = "m1",
    mtype: str = "chat",
) -> Message:
    return stanza(
        f'<message xmlns="{NS}" type="{mtype}" from="{frm}" to="{to}" id="{mid}">'
        f"{body_xml}</message>"
    )


@pytest.fixture
def conn() -> FakeConnector:
    return FakeConnector()


async def handle(conn: FakeConnector, msg: Message) -> list[Any]:
    before = len(conn.events)
    await Inbound(conn).handle_message(msg)  # type: ignore[arg-type]
    return [e for _, e in conn.events[before:]]


async def test_plain_chat_message(conn: FakeConnector) -> None:
    [evt] = await handle(
        conn,
        chat(
            '<body>hi *there*</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/>'
            '<request xmlns="urn:xmpp:receipts"/>'
        ),
    )
    assert isinstance(evt, RemoteMessage) and evt.network == "xmpp"
    assert evt.portal == PortalKey("bob@example.net", "L1") and evt.id == "o1"
    assert evt.sender.remote_id == "bob@example.net"
    assert evt.content.body == "hi *there*" and evt.content.html == "hi <strong>there</strong>"
    assert conn.receipts == ["m1"]
    # Both ids of the message lead to it.
    assert await conn.idmap.resolve(evt.portal, "m1") == "o1"


async def test_bad_input_gets_errors_not_exceptions(conn: FakeConnector) -> None:
    assert await handle(conn, chat("<body>x</body>", to="nobody@matrix.example.org")) == []
    assert await handle(conn, chat("<body>x</body>", to="matrix.example.org")) == []
    assert await handle(conn, chat("<body>" + "y" * 70_000 + "</body>")) == []
    assert conn.errors == ["item-not-found", "service-unavailable", "not-acceptable"]
    # Malformed payloads: dropped without a word.
    assert await handle(conn, chat('<reactions xmlns="urn:xmpp:reactions:0"/>')) == []
    assert await handle(conn, chat('<retract xmlns="urn:xmpp:message-retract:1"/>')) == []
    assert await handle(conn, chat('<replace xmlns="urn:xmpp:message-correct:0"/>')) == []
    assert await handle(conn, chat("<body/>", frm="example.net")) == []
    assert await handle(conn, chat("<body>z</body>", frm="x@matrix.example.org/r")) == []
    # (Control characters cannot arrive: the XML parser refuses them before any handler runs.)


async def test_reactions_are_sets(conn: FakeConnector) -> None:
    await handle(conn, chat("<body>target</body>", mid="t1"))

    def reactions(*keys: str) -> Message:
        inner = "".join(f"<reaction>{k}</reaction>" for k in keys)
        return chat(f'<reactions xmlns="urn:xmpp:reactions:0" id="t1">{inner}</reactions>', mid="r")

    first = await handle(conn, reactions("👍", "🎉"))
    assert [(type(e), e.key) for e in first] == [(RemoteReaction, "👍"), (RemoteReaction, "🎉")]
    second = await handle(conn, reactions("🎉"))
    assert [(type(e), e.key, e.target_id) for e in second] == [(RemoteReactionRemove, "👍", "t1")]


async def test_only_the_author_corrects_or_retracts(conn: FakeConnector) -> None:
    await handle(conn, chat("<body>mine</body>", mid="a1"))
    mallory = "mallory@example.net/x"
    assert (
        await handle(
            conn,
            chat(
                '<body>pwned</body><replace xmlns="urn:xmpp:message-correct:0" id="a1"/>',
                frm=mallory,
                mid="b",
            ),
        )
        == []
    )
    assert (
        await handle(
            conn,
            chat('<retract xmlns="urn:xmpp:message-retract:1" id="a1"/>', frm=mallory, mid="c"),
        )
        == []
    )
    [edit] = await handle(
        conn,
        chat('<body>fixed</body><replace xmlns="urn:xmpp:message-correct:0" id="a1"/>', mid="d"),
    )
    assert isinstance(edit, RemoteEdit) and edit.target_id == "a1" and edit.content.body == "fixed"
    [red] = await handle(
        conn, chat('<retract xmlns="urn:xmpp:message-retract:1" id="a1"/>', mid="e")
    )
    assert isinstance(red, RemoteRedaction) and red.target_id == "a1"


async def test_replies_emotes_files_and_chat_states(conn: FakeConnector) -> None:
    await handle(conn, chat("<body>question</body>", mid="q1"))
    quote = "&gt; bob:\n&gt; question\n"
    [reply] = await handle(
        conn,
        chat(
            f'<body>{quote}answer</body><reply xmlns="urn:xmpp:reply:0" id="q1"/>'
            '<fallback xmlns="urn:xmpp:fallback:0" for="urn:xmpp:reply:0">'
            '<body start="0" end="18"/></fallback>',
            mid="q2",
        ),
    )
    assert reply.content.body == "answer" and reply.content.reply_to == "q1"
    [emote] = await handle(conn, chat("<body>/me waves</body>", mid="q3"))
    assert emote.content.msgtype == "m.emote" and emote.content.body == "waves"
    url = "https://files.example.net/a/cat%20pic.jpg"
    [image] = await handle(
        conn, chat(f'<body>{url}</body><x xmlns="jabber:x:oob"><url>{url}</url></x>', mid="q4")
    )
    assert image.content.msgtype == "m.image" and image.content.media_url == url
    assert image.content.body == "cat pic.jpg"
    assert image.parts == []  # a body that is only the link: one file event
    [parted] = await handle(
        conn,
        chat(
            f'<body>look *here*\n{url}</body><x xmlns="jabber:x:oob"><url>{url}</url></x>', mid="q5"
        ),
    )
    text, file = parted.message_parts()
    assert (text.id, text.content.body, text.content.msgtype) == ("", "look *here*", "m.text")
    assert text.content.html == "look <strong>here</strong>"
    assert (file.id, file.content.msgtype, file.content.media_url) == ("oob", "m.image", url)
    assert file.content.body == "cat pic.jpg"
    [typing] = await handle(
        conn, chat('<composing xmlns="http://jabber.org/protocol/chatstates"/>')
    )
    assert isinstance(typing, RemoteTyping) and typing.typing
    [stopped] = await handle(conn, chat('<paused xmlns="http://jabber.org/protocol/chatstates"/>'))
    assert not stopped.typing


async def test_groupchat_listener_and_echoes(conn: FakeConnector) -> None:
    room = conn.muc.room("room@muc.example.org")
    room.listener = "L1"
    room.nick_of["L1"] = "alice"
    room.ours["alice"] = "L1"
    room.occupants["Bob"] = Occupant("Bob", "bob@example.net")
    sid = '<stanza-id xmlns="urn:xmpp:sid:0" by="room@muc.example.org" id="S1"/>'
    [msg] = await handle(
        conn,
        chat(
            f"<body>hello</body>{sid}",
            frm="room@muc.example.org/Bob",
            to=PUPPET + "/bridgekit",
            mtype="groupchat",
        ),
    )
    assert msg.id == "S1" and msg.sender.remote_id == "bob@example.net" and msg.sender.name == "Bob"
    assert msg.portal == PortalKey("room@muc.example.org")
    echo = chat(
        f'<body>mine</body><origin-id xmlns="urn:xmpp:sid:0" id="mx1"/>{sid}',
        frm="room@muc.example.org/alice",
        to=PUPPET + "/bridgekit",
        mtype="groupchat",
    )
    assert await handle(conn, echo) == [] and conn.echoes == [("mx1", "S1")]
    room.listener = "L2"  # another login's copy is the one bridged now
    assert (
        await handle(
            conn,
            chat(
                "<body>x</body>",
                frm="room@muc.example.org/Bob",
                to=PUPPET + "/bridgekit",
                mtype="groupchat",
            ),
        )
        == []
    )
    # Private messages through the room are refused.
    assert await handle(conn, chat("<body>psst</body>", frm="room@muc.example.org/Bob")) == []
    assert conn.errors[-1] == "feature-not-implemented"
