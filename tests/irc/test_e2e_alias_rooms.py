"""Portal rooms made by joining an alias, end to end (Synapse, InspIRCd): the form people
type works, refusals are logged, and a stranger cannot make the bridge create rooms without
bound (the homeserver does not say who asks)."""

from __future__ import annotations

import logging

import pytest

from bridgekit.testing.matrix_client import MatrixError
from bridges.irc.names import casefold
from tests.conftest import eventually
from tests.helpers import DOMAIN
from tests.irc.e2e import SERVER, alias, irc_networks


def typed(channel: str) -> str:
    """The alias as the README shows it and people type it: the channel name as it is."""
    return f"#_irc_{SERVER}_{casefold(channel)}:{DOMAIN}"


async def test_the_alias_as_people_type_it_joins_the_channel_room(
    make_bridge, ircd, bridge_env, uid, caplog
):
    caplog.set_level(logging.INFO, logger="bridgekit")
    await make_bridge(networks=irc_networks(ircd))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    async with alice:
        room_id = await alice.join(typed(channel))
        # The escaped form names the same room.
        assert await alice.resolve_alias(alias(channel)) == room_id
        # A refused query is 404 and says why in the log (it was silent).
        upper = f"#_irc_{SERVER}_#{uid('Chan').upper()}:{DOMAIN}"
        with pytest.raises(MatrixError):
            await alice.join(upper)
        assert any(upper in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


async def test_rooms_from_aliases_are_rate_limited_per_network(
    make_bridge, ircd, bridge_env, uid, caplog
):
    caplog.set_level(logging.INFO, logger="bridgekit")
    bridge = await make_bridge(networks=irc_networks(ircd), **{"bridge.alias_rooms.per_minute": 2})
    mallory = await bridge_env.synapse.register_user(uid("mallory"))
    async with mallory:
        made = [await mallory.join(alias("#" + uid("any"))) for _ in range(2)]
        with pytest.raises(MatrixError) as refused:
            await mallory.join(alias("#" + uid("any")))
        assert "404" in str(refused.value) or refused.value.errcode == "M_NOT_FOUND"
        assert any("bridge.alias_rooms.per_minute" in r.getMessage() for r in caplog.records)
        assert len({p.mxid for p in await bridge.store.all_portals()}) == len(made) == 2
        # Rooms that exist already are not limited: their alias still resolves.
        assert await mallory.join(made[0]) == made[0]


async def test_a_room_nobody_joined_is_closed_and_forgotten(make_bridge, ircd, bridge_env, uid):
    bridge = await make_bridge(
        networks=irc_networks(ircd), **{"bridge.alias_rooms.cleanup_after": 2}
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    lonely, kept = "#" + uid("lonely"), "#" + uid("kept")
    async with alice:
        # A directory lookup makes the homeserver ask the bridge, but nobody joins; the other
        # spelling of its alias points at the same room.
        lonely_room = await alice.resolve_alias(typed(lonely))
        assert await alice.resolve_alias(alias(lonely)) == lonely_room
        kept_room = await alice.join(alias(kept))
        portals = {p.mxid: p for p in await bridge.store.all_portals()}
        assert lonely_room in portals and kept_room in portals

        async def forgotten() -> bool:
            return bridge.store.is_portal_room(lonely_room) is False and not [
                p for p in await bridge.store.all_portals() if p.mxid == lonely_room
            ]

        await eventually(forgotten, timeout=20)
        bot = bridge.matrix.bot
        assert bot is not None

        async def bot_left() -> bool:
            return lonely_room not in await bot.get_joined_rooms()

        await eventually(bot_left)

        # The joined room stays, and is no longer watched.
        async def kept_unwatched() -> bool:
            portal = next(p for p in await bridge.store.all_portals() if p.mxid == kept_room)
            return "alias_room" not in portal.metadata

        await eventually(kept_unwatched)
        assert kept_room in await bot.get_joined_rooms()
        # Both its aliases went with it: joining either makes a new room.
        again = await alice.join(alias(lonely))
        assert again != lonely_room
        assert await alice.resolve_alias(typed(lonely)) == again


async def test_a_restart_does_not_forget_a_room_to_close(make_bridge, ircd, bridge_env, uid):
    bridge = await make_bridge(networks=irc_networks(ircd))  # cleanup_after: 600 s
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        room_id = await alice.resolve_alias(alias("#" + uid("lonely")))
    await make_bridge.stop(bridge)
    bridge = await make_bridge(
        networks=irc_networks(ircd), **{"bridge.alias_rooms.cleanup_after": 1}
    )

    async def forgotten() -> bool:
        return not [p for p in await bridge.store.all_portals() if p.mxid == room_id]

    await eventually(forgotten, timeout=20)
