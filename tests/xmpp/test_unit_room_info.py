"""A MUC's disco#info becomes its ChatInfo: the name is the conference identity's name."""

from __future__ import annotations

from types import SimpleNamespace

from slixmpp.plugins.xep_0030.stanza import DiscoInfo

from bridges.xmpp.connector import XMPPConnector


async def test_the_conference_identity_names_the_room_without_a_roominfo_form() -> None:
    disco = DiscoInfo()
    disco.add_identity("conference", "text", name="Tea Room", lang="en")
    disco.add_feature("muc_open")
    disco.add_feature("muc_public")

    async def fetch_info(room: str) -> DiscoInfo:
        return disco

    async def space_of(room: str) -> None:
        return None

    this = SimpleNamespace(
        muc=SimpleNamespace(rooms={}),
        muc_spaces=SimpleNamespace(space_of=space_of),
        component=SimpleNamespace(
            plugin={"bridgekit_identity": SimpleNamespace(fetch_info=fetch_info)}
        ),
    )
    info = await XMPPConnector.room_info(this, "tea@muc.example")  # type: ignore[arg-type]
    assert info.name == "Tea Room"
