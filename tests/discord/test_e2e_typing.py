"""Typing both ways: a personal login's user typing on Matrix types on Discord as their
account (again every few seconds while they type); a bot login never types for its relayed
user; a Discord user's TYPING_START makes their ghost type (in a guild through its bot, in a
DM through the personal session); the bridge's own accounts' typing is not echoed back.
Fake Discord <-> bridge <-> real Synapse."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridges.discord import typing_notices
from bridges.discord.ids import portal_key
from tests.conftest import eventually
from tests.discord.conftest import body_is, connector, login_bot, open_channel
from tests.discord.personal_helpers import login_user, portal_room

pytestmark = pytest.mark.engine_independent


async def set_typing(client: Any, room_id: str, typing: bool) -> None:
    body: dict[str, Any] = {"typing": typing}
    if typing:
        body["timeout"] = 30000
    await client.request("PUT", f"/rooms/{room_id}/typing/{client.user_id}", body)


def typing_of(user_id: str):
    return lambda e: e.get("type") == "m.typing" and user_id in e["content"].get("user_ids", [])


async def test_matrix_typing_of_a_personal_login_types_on_discord(
    dp_bridge, discord_world, bridge_env, uid, monkeypatch
):
    monkeypatch.setattr(typing_notices, "REPEAT", 1.0)
    w = discord_world
    fake = w.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_bot(dp_bridge, admin, w)
        await login_user(dp_bridge, alice, fake, w.alice)
        room_id = await open_channel(w, admin, w.general, w.bob)
        await admin.invite(room_id, alice.user_id)
        await alice.join(room_id)
        path = f"/channels/{w.general.id}/typing"
        # The bot's owner is relayed: no typing as the bot.
        await set_typing(admin, room_id, True)
        await admin.send_text(room_id, "probe")  # transactions flow past the typing
        await eventually(lambda: any(m["content"] == "probe" for m in fake.messages(w.general)))
        await set_typing(admin, room_id, False)
        assert fake.requests_to("POST", path) == []
        # Alice types: her account types on Discord, again while she goes on.
        await set_typing(alice, room_id, True)
        await eventually(lambda: len(fake.requests_to("POST", path)) >= 2, timeout=20)
        assert {r.headers["Authorization"] for r in fake.requests_to("POST", path)} == {
            w.alice.token
        }
        # Her typing reaches the bot over the gateway: not shown back on Matrix as hers
        # again, and it stops when she stops.
        await set_typing(alice, room_id, False)
        typing = connector(dp_bridge).typing
        await eventually(lambda: not typing._tasks, timeout=20)  # Synapse told the bridge
        await asyncio.sleep(0.5)  # a call already under way may still land
        stopped = len(fake.requests_to("POST", path))
        await asyncio.sleep(2.5)  # more than two REPEATs: nothing more
        assert len(fake.requests_to("POST", path)) == stopped


async def test_discord_typing_reaches_matrix_from_the_ghost(
    dp_bridge, discord_world, bridge_env, uid
):
    w = discord_world
    fake = w.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_bot(dp_bridge, admin, w)
        own = await login_user(dp_bridge, alice, fake, w.alice)
        room_id = await open_channel(w, admin, w.general, w.bob)
        # In a guild channel, through the bot.
        await fake.typing(w.general, w.bob)
        await admin.wait_for_event(room_id, typing_of(w.ghost(w.bob)), timeout=20)
        # In a DM, through Alice's own session.
        dm = fake.add_dm(w.alice, w.bob)
        await fake.send_message(dm, w.bob, "dm opened")
        dm_room = await portal_room(dp_bridge, alice, portal_key(dm.id, own.login.id))
        await alice.wait_for_event(dm_room, body_is("dm opened"))
        await fake.typing(dm, w.bob)
        await alice.wait_for_event(dm_room, typing_of(w.ghost(w.bob)), timeout=20)
        # Alice typing on her Discord app is her own: not shown (as her or her ghost).
        await fake.typing(w.general, w.alice)
        await fake.typing(w.general, w.bob)
        await fake.send_message(w.general, w.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        history = admin.history(room_id)
        assert not any(typing_of(alice.user_id)(e) for e in history)
        assert not any(typing_of(w.ghost(w.alice))(e) for e in history)
