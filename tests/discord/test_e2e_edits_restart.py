"""Edits and deletes after a bridge restart still find the original Matrix event (the
message map is the database's): persistence, so both engines."""

from __future__ import annotations

from tests.conftest import eventually
from tests.discord.conftest import body_is, connector, discord_networks, login_bot, open_channel
from tests.discord.test_e2e_edits import is_redaction_of, matrix_edit, replaces


async def restart(make_bridge, bridge, fake):
    await make_bridge.stop(bridge)
    return await make_bridge(networks=discord_networks(fake), media={"allow": [fake.cdn_host]})


async def test_edits_and_deletes_after_a_restart_reach_the_original(
    make_bridge, discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        sent = await fake.send_message(world.general, world.bob, "said before")
        original = await admin.wait_for_event(room_id, body_is("said before"))
        doomed = await fake.send_message(world.general, world.bob, "deleted after")
        doomed_event = await admin.wait_for_event(room_id, body_is("deleted after"))
        mine = await admin.send_text(room_id, "from matrix before")
        await eventually(
            lambda: any(m["content"] == "from matrix before" for m in fake.messages(world.general))
        )
        bridge = await restart(make_bridge, discord_bridge, fake)
        reloaded = connector(bridge).clients[client.login.id]
        await eventually(lambda: reloaded.connected, timeout=30)
        await fake.edit_message(world.general, sent["id"], "said before, edited after")
        await admin.wait_for_event(
            room_id, replaces(original["event_id"], "said before, edited after"), timeout=30
        )
        await fake.delete_message(world.general, doomed["id"])
        await admin.wait_for_event(room_id, is_redaction_of(doomed_event["event_id"]), timeout=30)
        await admin.send_message(room_id, matrix_edit(mine, "from matrix, edited after"))
        await eventually(
            lambda: any(
                m["content"] == "from matrix, edited after" for m in fake.messages(world.general)
            ),
            timeout=30,
        )
