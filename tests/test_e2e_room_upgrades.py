"""Room upgrades (real Synapse): a portal follows a tombstone its room's state allows, and
only such a tombstone."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from bridgekit.portal.upgrades import may_send_tombstone
from bridgekit.testing.matrix_client import MatrixError
from tests.conftest import BridgeEnv, appservice_recovered, eventually
from tests.helpers import body_is, bot_joined, fake, login, notice_says, room_with_bot


@asynccontextmanager
async def plumbed_portal(bridge: Bridge, env: BridgeEnv, uid: Any, preset: str):
    """Alice's own room (she is its admin), bridged to a fake chat where bob speaks."""
    alice = await env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await room_with_bot(bridge, alice, preset=preset)
        await alice.send_text(room_id, f"!bridge fake {chat}")
        await alice.wait_for_event(room_id, notice_says("Bridged this room"))
        yield alice, client, chat, room_id, net


async def upgrade(user: Any, room_id: str) -> str:
    """The room upgrade API: Synapse sends the tombstone and creates the new room."""
    answer = await user.request(
        "POST", f"/rooms/{quote(room_id, safe='')}/upgrade", {"new_version": "12"}
    )
    return str(answer["replacement_room"])


async def portal_room(bridge: Bridge, chat: str) -> str | None:
    portal = await bridge.store.get_portal("fake", PortalKey(chat))
    return portal.mxid if portal else None


async def bridged_both_ways(bridge, alice, client, chat, room_id, net, text: str) -> None:
    await client.remote_message(chat, "bob", f"{text} from bob")
    await alice.wait_for_event(room_id, body_is(f"{text} from bob"), timeout=20)
    sent = await alice.send_text(room_id, f"{text} from alice")
    await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == sent)


@pytest.mark.parametrize("preset", ["public_chat", "private_chat"])
async def test_an_upgraded_portal_room_is_followed_to_its_replacement(
    bridge: Bridge, bridge_env: BridgeEnv, uid, preset: str
):
    async with plumbed_portal(bridge, bridge_env, uid, preset) as (alice, client, chat, old, net):
        new = await upgrade(alice, old)
        if preset == "private_chat":  # invite-only: the bot cannot join by itself
            await alice.wait_for_event(old, notice_says("Invite me"), timeout=20)
            assert await portal_room(bridge, chat) == old
            await alice.invite(new, bridge.bot_mxid)
        await alice.wait_for_event(new, bot_joined(bridge), timeout=20)

        async def moved() -> bool:
            return await portal_room(bridge, chat) == new

        await eventually(moved, timeout=20)
        info: dict[str, Any] = {}

        async def bridge_info() -> bool:
            try:
                info.update(await alice.get_state(new, "m.bridge", f"net.bridgekit://fake/{chat}"))
            except MatrixError:
                return False
            return True

        await eventually(bridge_info)
        assert info["channel"]["id"] == chat and info["bridgebot"] == bridge.bot_mxid

        await bridged_both_ways(bridge, alice, client, chat, new, net, "after the upgrade")
        # The old room is no longer bridged, either way.
        stale = await alice.send_text(old, "into the old room")
        await asyncio.sleep(1)
        assert not [i for i in net.sent if i.kind == "message" and i.data.event_id == stale]
        bodies = [
            e["content"].get("body") for e in alice.history(old) if e["type"] == "m.room.message"
        ]
        assert "after the upgrade from bob" not in bodies


async def test_a_tombstone_the_rooms_state_does_not_hold_is_ignored(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """A tombstone that is not in the room's current state (forged, or sent into the
    bridge's transaction endpoint) moves nothing, even pointing at a room that claims to
    succeed the portal's."""
    async with plumbed_portal(bridge, bridge_env, uid, "public_chat") as scene:
        alice, client, chat, old, net = scene
        mallory = await bridge_env.synapse.register_user(uid("mallory"))
        async with mallory:
            await mallory.join(old)
            trap = await mallory.create_room(
                preset="public_chat",
                creation_content={"predecessor": {"room_id": old, "event_id": "$x"}},
            )
            forged = {
                "type": "m.room.tombstone",
                "state_key": "",
                "room_id": old,
                "sender": alice.user_id,  # the admin, so a sender check alone would pass
                "event_id": f"$forged{uid('e')}",
                "origin_server_ts": int(time.time() * 1000),
                "content": {"body": "moved", "replacement_room": trap},
            }
            url = f"http://127.0.0.1:{bridge_env.as_port}/_matrix/app/v1/transactions/"
            async with aiohttp.ClientSession() as http:
                async with http.put(
                    url + uid("txn"),
                    data=json.dumps({"events": [forged]}),
                    headers={"Authorization": f"Bearer {bridge_env.hs_token}"},
                ) as resp:
                    assert resp.status == 200
            await asyncio.sleep(1.5)
            assert await portal_room(bridge, chat) == old
            members = await mallory.joined_members(trap)
            assert bridge.bot_mxid not in members
            await bridged_both_ways(bridge, alice, client, chat, old, net, "still here")


async def test_a_tombstone_whose_sender_lost_the_power_is_ignored(
    make_bridge, bridge_env: BridgeEnv, uid
):
    """Bob was allowed to send a tombstone, did so while the bridge was down, and the room's
    admin took the power back before the bridge saw it: the room's current state decides."""
    bridge = await make_bridge()
    async with plumbed_portal(bridge, bridge_env, uid, "public_chat") as scene:
        alice, client, chat, old, net = scene
        bob = await bridge_env.synapse.register_user(uid("bob"))
        async with bob:
            await bob.join(old)
            levels = await alice.get_state(old, "m.room.power_levels")
            levels.setdefault("events", {})["m.room.tombstone"] = 0
            await alice.send_state(old, "m.room.power_levels", "", levels)
            trap = await bob.create_room(
                preset="public_chat",
                creation_content={"predecessor": {"room_id": old, "event_id": "$x"}},
            )
            await make_bridge.stop(bridge)
            await bob.send_state(
                old, "m.room.tombstone", "", {"body": "x", "replacement_room": trap}
            )
            levels["events"]["m.room.tombstone"] = 100
            await alice.send_state(old, "m.room.power_levels", "", levels)
            bridge = await make_bridge()
            fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
            net = fake(bridge).network
            # Not while Synapse's recoverer finishes sending what the bridge missed: the
            # message's transaction could be left unsent (see appservice_recovered).
            await appservice_recovered(bridge_env)
            sent = await alice.send_text(old, "after the revoked tombstone")
            await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == sent, 30)
            assert await portal_room(bridge, chat) == old
            assert bridge.bot_mxid not in await bob.joined_members(trap)


V12 = {"sender": "@creator:hs", "content": {"room_version": "12"}}
V10 = {"sender": "@creator:hs", "content": {"room_version": "10"}}


@pytest.mark.parametrize(
    ("sender", "levels", "create", "allowed"),
    [
        ("@admin:hs", {"users": {"@admin:hs": 100}}, V10, True),
        ("@mod:hs", {"users": {"@mod:hs": 50}}, V10, True),  # state_default 50
        ("@mod:hs", {"users": {"@mod:hs": 50}, "events": {"m.room.tombstone": 100}}, V10, False),
        ("@anyone:hs", {"events": {"m.room.tombstone": 0}}, V10, True),
        ("@anyone:hs", {}, V10, False),
        ("@creator:hs", {}, V12, True),  # v12 creators are above power levels
        (
            "@other:hs",
            {},
            {**V12, "content": {**V12["content"], "additional_creators": ["@other:hs"]}},
            True,
        ),
        ("@creator:hs", {}, V10, False),  # not in v10: only what `users` says
        ("@creator:hs", None, V10, True),  # no power levels at all: the creator
        ("@anyone:hs", None, V10, False),
        ("@admin:hs", {"users": {"@admin:hs": "lots"}}, V10, False),  # malformed
        ("@admin:hs", {"users": ["@admin:hs"]}, V10, False),
    ],
)
def test_who_may_send_a_tombstone(sender, levels, create, allowed) -> None:
    assert may_send_tombstone(sender, levels, create) is allowed


async def test_an_upgrade_into_a_room_where_the_bot_has_no_power_is_followed_and_explained(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """The replacement room gives the bot no power (its admin demoted it before inviting
    it): the portal still moves and bridges both ways, and the room is told exactly what
    power to grant the bot for the rest (the bridge info state)."""
    async with plumbed_portal(bridge, bridge_env, uid, "private_chat") as scene:
        alice, client, chat, old, net = scene
        new = await upgrade(alice, old)
        await alice.wait_for_event(old, notice_says("Invite me"), timeout=20)
        levels = await alice.get_state(new, "m.room.power_levels")
        levels.setdefault("users", {})[bridge.bot_mxid] = 0
        await alice.send_state(new, "m.room.power_levels", "", levels)
        await alice.invite(new, bridge.bot_mxid)
        await alice.wait_for_event(new, bot_joined(bridge), timeout=20)
        needed = levels.get("events", {}).get("m.bridge", levels.get("state_default", 50))
        notice = await alice.wait_for_event(new, notice_says("I need power"), timeout=20)
        text = notice["content"]["body"]
        assert bridge.bot_mxid in text and f"/op {bridge.bot_mxid} {needed}" in text, text

        async def moved() -> bool:
            return await portal_room(bridge, chat) == new

        await eventually(moved, timeout=20)
        await bridged_both_ways(bridge, alice, client, chat, new, net, "without power")
