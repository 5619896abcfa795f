"""Matrix room changes made in a MUC portal, carried out by the Matrix user's occupant.

A Matrix room name becomes the MUC's name (its configuration form) and a power level given to
a Matrix user who is an occupant becomes their affiliation, when the room lets the acting
occupant do it; when it does not, the portal gets a notice instead of silence.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.harness.prosody import Prosody
from tests.xmpp.conftest import alias
from tests.xmpp.test_e2e_muc import open_muc_portal

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

MUC_USER = "http://jabber.org/protocol/muc#user"


def is_notice(text: str):
    return lambda e: (
        e.get("type") == "m.room.message"
        and e["content"].get("msgtype") == "m.notice"
        and text in e["content"].get("body", "")
    )


async def set_level(bridge: Any, room_id: str, mxid: str, level: int) -> None:
    """The bot (the room's creator) gives a Matrix user a power level."""
    bot = bridge.matrix.bot
    levels = await bot.get_power_levels(room_id)
    levels.set_user_level(mxid, level)
    await bot.set_power_levels(room_id, levels)


async def muc_name(client: Any, room: str) -> str | None:
    info = await client.xmpp.plugin["xep_0030"].get_info(jid=room, cached=False)
    names = [ident[-1] for ident in info["disco_info"]["identities"] if ident[-1]]
    return names[0] if names else None


def puppet_jid(bridge: Any, mxid: str) -> str:
    return bridge.connectors["xmpp"].client_of_user(mxid).jid


async def test_matrix_room_name_renames_the_muc_where_permitted(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice:
        await set_level(xmpp_bridge, room_id, alice.user_id, 50)  # may rename on Matrix
        # Alice's occupant is a plain participant: the room refuses, the portal says so.
        await alice.send_state(room_id, "m.room.name", "", {"name": "Refused name"})
        notice = await alice.wait_for_event(room_id, is_notice("not renamed"), timeout=20)
        assert "forbidden" in notice["content"]["body"]
        assert await muc_name(bob, room) != "Refused name"
        # Bob (the owner) makes Alice's occupant an owner: now the rename goes through.
        await bob.xmpp.plugin["xep_0045"].set_affiliation(
            room, "owner", jid=puppet_jid(xmpp_bridge, alice.user_id)
        )
        await alice.send_state(room_id, "m.room.name", "", {"name": "Named on Matrix"})

        async def renamed() -> bool:
            return await muc_name(bob, room) == "Named on Matrix"

        await eventually(renamed, timeout=20)


async def test_matrix_power_levels_become_affiliations_where_permitted(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, nick = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    dave = await bridge_env.synapse.register_user(uid("dave"))
    async with alice, dave:
        await dave.join(alias(room))
        await eventually(lambda: xmpp_bridge.connectors["xmpp"].client_of_user(dave.user_id))
        dave_jid = puppet_jid(xmpp_bridge, dave.user_id)
        await set_level(xmpp_bridge, room_id, alice.user_id, 100)  # may change levels on Matrix

        async def dave_level(level: int) -> None:
            levels = await alice.get_state(room_id, "m.room.power_levels")
            levels.setdefault("users", {})[dave.user_id] = level
            await alice.send_state(room_id, "m.room.power_levels", "", levels)

        # Alice's occupant is a participant: XMPP refuses, the portal says so.
        await dave_level(60)
        notice = await alice.wait_for_event(room_id, is_notice("not applied"), timeout=20)
        assert (
            "forbidden" in notice["content"]["body"] or "not-allowed" in notice["content"]["body"]
        )
        # As an owner, her occupant makes Dave's an admin (50) and then an owner (100).
        await bob.xmpp.plugin["xep_0045"].set_affiliation(
            room, "owner", jid=puppet_jid(xmpp_bridge, alice.user_id)
        )
        for level, affiliation in ((50, "admin"), (100, "owner")):
            await dave_level(level)
            await bob.wait_for(
                lambda p, a=affiliation: (
                    p["from"].bare == room
                    and (item := p.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}item")) is not None
                    and item.get("affiliation") == a
                    and (item.get("jid") or "").split("/")[0] == dave_jid
                ),
                presences=True,
                timeout=20,
            )
