"""A bridged guild's structure on Matrix: announcement channels as portals, channel renames,
topics and deletions, ``guild_portals: all`` (at ``discord bridge-guild`` and for new
channels), voice channels and categories never portals, the guild as a space that follows
its name and icon. Fake Discord <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import eventually
from tests.discord.conftest import body_is, connector, discord_networks, login_bot, open_channel
from tests.harness.discord_fake import (
    GUILD_ANNOUNCEMENT,
    GUILD_CATEGORY,
    GUILD_FORUM,
    GUILD_VOICE,
)
from tests.harness.discord_fake.guild_updates import update_guild
from tests.helpers import management_room

pytestmark = pytest.mark.engine_independent

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def state_is(etype: str, **want: Any) -> Any:
    return lambda e: (
        e.get("type") == etype and all(e.get("content", {}).get(k) == v for k, v in want.items())
    )


async def room_state(client: MatrixTestClient, room_id: str) -> list[dict[str, Any]]:
    return (await client.request("GET", f"/rooms/{room_id}/state"))["value"]


async def space_of(client: MatrixTestClient, room_id: str) -> str:
    """The space a portal names as its parent (the user is invited to it): joined."""

    async def parent() -> str | None:
        for e in await room_state(client, room_id):
            if e["type"] == "m.space.parent" and e.get("content", {}).get("canonical"):
                return e["state_key"]
        return None

    found: list[str] = []

    async def has_parent() -> bool:
        p = await parent()
        if p:
            found.append(p)
        return bool(p)

    await eventually(has_parent, timeout=30)
    space_id = found[-1]
    await eventually(lambda: _try_join(client, space_id), timeout=30)
    return space_id


async def _try_join(client: MatrixTestClient, room_id: str) -> bool:
    try:
        await client.join(room_id)
    except Exception:  # noqa: BLE001 - not invited yet
        return False
    return True


async def test_an_announcement_channel_is_a_portal_both_ways(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    news = fake.add_channel(world.guild, "news", type=GUILD_ANNOUNCEMENT, topic="releases")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, news, world.alice)
        assert (await admin.get_state(room_id, "m.room.name"))["name"] == "#news"
        assert (await admin.get_state(room_id, "m.room.topic"))["topic"] == "releases"
        await admin.send_text(room_id, "announced from matrix")
        await eventually(
            lambda: any(m["content"] == "announced from matrix" for m in fake.messages(news))
        )
        # an announcement thread is an m.thread too
        post = await fake.send_message(news, world.alice, "v2 is out")
        root = await admin.wait_for_event(room_id, body_is("v2 is out"))
        thread = await fake.create_thread(news, post["id"], "v2", world.bob)
        assert thread.type == 10  # ANNOUNCEMENT_THREAD
        await fake.send_message(news, world.bob, "congrats", thread=thread)
        evt = await admin.wait_for_event(room_id, body_is("congrats"))
        assert evt["content"]["m.relates_to"]["event_id"] == root["event_id"]


async def test_a_renamed_channel_renames_its_room_and_a_new_topic_follows(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        await fake.update_channel(world.general, name="lobby")
        await admin.wait_for_event(room_id, state_is("m.room.name", name="#lobby"))
        await fake.update_channel(world.general, topic="the new topic")
        await admin.wait_for_event(room_id, state_is("m.room.topic", topic="the new topic"))
        # a channel with no room yet gets none from a rename
        quiet = fake.add_channel(world.guild, "quiet")
        await fake.update_channel(quiet, name="silent")
        await fake.send_message(world.general, world.bob, "later")
        await admin.wait_for_event(room_id, body_is("later"))
        assert len(await admin.joined_rooms()) == 1
        assert len(fake.requests_to("GET", f"/channels/{quiet.id}")) == 0


async def test_a_deleted_channel_leaves_its_room_told_and_closed(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    doomed = fake.add_channel(world.guild, "doomed")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, doomed, world.bob)
        await admin.send_text(room_id, "before the end")  # the channel's webhook is made
        await eventually(lambda: len(fake.messages(doomed)) == 2)
        await fake.delete_channel(doomed)
        notice = await admin.wait_for_event(
            room_id, lambda e: "was deleted on Discord" in e.get("content", {}).get("body", "")
        )
        assert notice["content"]["msgtype"] == "m.notice"
        await admin.wait_for_event(room_id, state_is("m.room.join_rules", join_rule="invite"))
        assert await connector(discord_bridge).bridge.get_kv(f"webhook:{doomed.id}") is None


async def test_guild_portals_all_makes_every_text_room_at_bridge_guild_and_for_new_channels(
    make_bridge, discord_fake, discord_world, bridge_env, uid
):
    world = discord_world
    fake = discord_fake
    category = fake.add_channel(world.guild, "Text channels", type=GUILD_CATEGORY)
    news = fake.add_channel(world.guild, "news", type=GUILD_ANNOUNCEMENT, parent=category)
    forum = fake.add_channel(world.guild, "help", type=GUILD_FORUM)
    voice = fake.add_channel(world.guild, "Voice", type=GUILD_VOICE)
    bridge = await make_bridge(
        networks=discord_networks(fake, guild_portals="all"), media={"allow": [fake.cdn_host]}
    )
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(bridge, admin, world, bridge_guild=False)
        conv = await management_room(admin, bridge)
        answer = await conv.say(f"discord bridge-guild {world.guild.id}")
        assert "3 rooms made" in answer, answer
        names = set()
        for _ in range(3):
            room_id, _ = await admin.wait_for_invite()
            await admin.join(room_id)
            names.add((await admin.get_state(room_id, "m.room.name"))["name"])
        assert names == {"#general", "#news", "#help"}
        portals = connector(bridge).bridge
        for channel in (category, voice):
            assert not await portals.has_room(_key(channel))
        for channel in (world.general, news, forum):
            assert await portals.has_room(_key(channel))
        # a new text channel gets its room at once
        fresh = fake.add_channel(world.guild, "fresh")
        room_id, _ = await admin.wait_for_invite()
        await admin.join(room_id)
        assert (await admin.get_state(room_id, "m.room.name"))["name"] == "#fresh"
        # a voice channel's text chat is never bridged, nor is a new voice channel a room
        fake.add_channel(world.guild, "Voice 2", type=GUILD_VOICE)
        await fake.send_message(voice, world.bob, "voice chat words")
        await fake.send_message(fresh, world.bob, "fresh words")
        await admin.wait_for_event(room_id, body_is("fresh words"))
        for room in await admin.joined_rooms():
            bodies = [e["content"].get("body") for e in await admin.messages(room)]
            assert "voice chat words" not in bodies
        assert not await portals.has_room(_key(voice))
        assert len(await admin.joined_rooms()) == 5  # 4 rooms and the management room


def _key(channel: Any) -> Any:
    from bridges.discord.ids import portal_key

    return portal_key(channel.id)


async def test_the_guild_is_a_space_that_follows_its_name_and_icon(
    discord_bridge, discord_world, bridge_env, uid
):
    world = discord_world
    fake = world.fake
    fake.add_image("acmeicon", PNG)
    world.guild.icon = "acmeicon"
    news = fake.add_channel(world.guild, "news", type=GUILD_ANNOUNCEMENT)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        news_room = await open_channel(world, admin, news, world.bob)
        space_id = await space_of(admin, room_id)
        assert await space_of(admin, news_room) == space_id
        assert (await admin.get_state(space_id, "m.room.create")).get("type") == "m.space"
        assert (await admin.get_state(space_id, "m.room.name"))["name"] == "Acme"
        first_icon = (await admin.get_state(space_id, "m.room.avatar"))["url"]
        assert first_icon.startswith("mxc://")
        children = {
            e["state_key"]
            for e in await room_state(admin, space_id)
            if e["type"] == "m.space.child" and e.get("content", {}).get("via")
        }
        assert children == {room_id, news_room}
        fake.add_image("newicon", PNG + b"new")
        await update_guild(fake, world.guild, name="Acme Corp", icon="newicon")
        await admin.wait_for_event(space_id, state_is("m.room.name", name="Acme Corp"))
        avatar = await admin.wait_for_event(
            space_id,
            lambda e: (
                e.get("type") == "m.room.avatar"
                and e.get("content", {}).get("url") not in (None, first_icon)
            ),
        )
        assert avatar["content"]["url"].startswith("mxc://")
