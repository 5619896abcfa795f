"""Unit tests: the id map keeps one record per message, and reads what older versions wrote."""

from __future__ import annotations

from bridgekit.contract.events import PortalKey
from bridges.xmpp.idmap import IdMap
from tests.xmpp.test_unit_inbound import FakeBridge

ROOM = PortalKey("room@muc.example.org")


class CountingBridge(FakeBridge):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def set_kv(self, key: str, value: str | None) -> None:
        self.writes += 1
        await super().set_kv(key, value)


async def test_a_sent_message_costs_two_writes_and_maps_every_id() -> None:
    bridge = CountingBridge()
    idmap = IdMap(bridge)  # type: ignore[arg-type]
    await idmap.add_aliases(ROOM, "stanza-1", "mx1")
    await idmap.remember(ROOM, "stanza-1", "login:L1", sent_id="mx1")
    assert bridge.writes == 2
    assert await idmap.resolve(ROOM, "mx1") == "stanza-1"
    assert await idmap.author(ROOM, "stanza-1") == "login:L1"
    assert await idmap.sent_id(ROOM, "stanza-1") == "mx1"
    # A fresh map (after a restart) reads the same from the store.
    again = IdMap(bridge)  # type: ignore[arg-type]
    assert await again.author(ROOM, "stanza-1") == "login:L1"
    assert await again.sent_id(ROOM, "stanza-1") == "mx1"


async def test_unknown_messages_and_messages_stored_by_older_versions() -> None:
    bridge = CountingBridge()
    bridge.kv["xmpp:author:room@muc.example.org|:old-1"] = "bob@example.org"
    bridge.kv["xmpp:sent:room@muc.example.org|:old-1"] = "mx-old"
    idmap = IdMap(bridge)  # type: ignore[arg-type]
    assert await idmap.author(ROOM, "old-1") == "bob@example.org"
    assert await idmap.sent_id(ROOM, "old-1") == "mx-old"
    assert await idmap.author(ROOM, "nothing") is None
    assert await idmap.sent_id(ROOM, "nothing") == "nothing"
    # A remote user's message has no sent id: it is its own.
    await idmap.remember(ROOM, "s2", "carol@example.org")
    assert await idmap.sent_id(ROOM, "s2") == "s2"
