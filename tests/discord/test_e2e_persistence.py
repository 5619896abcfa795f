"""What the Discord connector keeps across a bridge restart (the database's: both engines): the
bot login and the guilds bridged with ``discord bridge-guild``, the portals and the message
map (a Discord reply after the restart to a message bridged before replies to its Matrix
event), and the channel's webhook (reused, not made again). The login and the guild commands
go through the management room, as an admin types them."""

from __future__ import annotations

import logging
from typing import Any

from bridgekit.bridge import Bridge
from bridgekit.contract.connector import BridgeStateEvent
from bridges.discord.ids import portal_key
from tests.conftest import SERVER_NAME, eventually
from tests.discord.conftest import body_is, connector, discord_networks, login_bot, open_channel
from tests.discord.personal_helpers import bodies, portal_room, user_token
from tests.slack.test_e2e_login import assert_redacted, leaks, say_secret
from tests.test_e2e_command_safety import trusted_management_room


async def restart(make_bridge: Any, bridge: Bridge, fake: Any, **options: Any) -> Bridge:
    await make_bridge.stop(bridge)
    return await make_bridge(
        networks=discord_networks(fake), media={"allow": [fake.cdn_host]}, **options
    )


def connected(bridge: Bridge, login_id: str) -> bool:
    state = bridge.login_states.get(login_id)
    return state is not None and state.state == BridgeStateEvent.CONNECTED


def reply_target(event: dict[str, Any]) -> str | None:
    return event["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")


def webhook_creations(fake: Any, channel: Any) -> list[Any]:
    return fake.requests_to("POST", f"/channels/{channel.id}/webhooks")


async def test_bot_login_and_guild_commands_through_the_management_room_survive_a_restart(
    make_bridge, discord_bridge, discord_world, bridge_env, uid, caplog
):
    """``login discord bot`` (the token's message redacted), ``discord guilds``,
    ``bridge-guild`` and ``unbridge-guild`` as typed in the management room; after a restart
    the login connects again by itself and the guild is still bridged (DiscordLoginState)."""
    caplog.set_level(logging.DEBUG)
    world, fake = discord_world, discord_world.fake
    guild_id = world.guild.id
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await trusted_management_room(admin, discord_bridge)
        assert "You have no Discord bot login" in await conv.say("discord guilds")
        ask = await conv.say("login discord bot")
        assert "token" in ask, ask
        done, token_msg = await say_secret(conv, world.bot_token)
        assert "Bridge Bot" in done, done
        await assert_redacted(conv, token_msg)
        [client] = [
            c
            for c in connector(discord_bridge).clients.values()
            if c.login.user_mxid == admin.user_id
        ]
        login_id = client.login.id
        await eventually(lambda: client.connected, timeout=30)
        await eventually(lambda: client.gateway.get_guild(int(guild_id)) is not None)

        listed = await conv.say("discord guilds")
        assert f"Acme ({guild_id}): not bridged" in listed, listed
        # Not bridged yet: the guild's messages stay on Discord.
        await fake.send_message(world.general, world.bob, "before bridging")
        assert "Acme is bridged" in await conv.say(f"discord bridge-guild {guild_id}")
        assert f"Acme ({guild_id}): bridged" in await conv.say("discord guilds")
        room_id = await open_channel(world, admin, world.general, world.bob)

        bridge = await restart(make_bridge, discord_bridge, fake)
        await eventually(lambda: connected(bridge, login_id), timeout=30)
        reloaded = connector(bridge).clients[login_id]
        assert reloaded.state.guilds == [str(guild_id)]
        assert reloaded.meta.token == world.bot_token
        await fake.send_message(world.general, world.bob, "after the restart")
        await admin.wait_for_event(room_id, body_is("after the restart"), timeout=30)
        assert f"Acme ({guild_id}): bridged" in await conv.say("discord guilds")

        # Unbridged (through the command, after the restart): Discord's messages stay there,
        # and that holds over the next restart too; bridged again, they come again.
        said = await conv.say(f"discord unbridge-guild {guild_id}")
        assert "Acme is no longer bridged" in said, said
        await fake.send_message(world.general, world.bob, "while unbridged")
        bridge = await restart(make_bridge, bridge, fake)
        await eventually(lambda: connected(bridge, login_id), timeout=30)
        assert connector(bridge).clients[login_id].state.guilds == []
        assert f"Acme ({guild_id}): not bridged" in await conv.say("discord guilds")
        await fake.send_message(world.general, world.bob, "still unbridged")
        assert "Acme is bridged" in await conv.say(f"discord bridge-guild {guild_id}")
        await fake.send_message(world.general, world.bob, "bridged again")
        await admin.wait_for_event(room_id, body_is("bridged again"), timeout=30)
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        for text in ("before bridging", "while unbridged", "still unbridged"):
            assert text not in bodies, text
        assert bodies.count("after the restart") == 1
        assert leaks(caplog.records, world.bot_token) == []


async def test_portal_message_map_and_webhook_survive_a_restart(
    make_bridge, discord_bridge, discord_world, bridge_env, uid
):
    """After a restart the channel's portal is the same room, a Discord reply to a message
    bridged before (a Discord user's, or a Matrix user's relayed through the webhook) replies
    to its Matrix event, and Matrix users are relayed through the webhook made before the
    restart (Discord holds one webhook for the channel, the bridge asked for one), whose
    messages are still known as the bridge's own (not bridged back)."""
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada Admin")
        client = await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        question = await fake.send_message(world.general, world.bob, "a question")
        asked = await admin.wait_for_event(room_id, body_is("a question"))
        mine = await admin.send_text(room_id, "relayed before")

        def sent(text: str) -> list[dict[str, Any]]:
            return [m for m in fake.messages(world.general) if m["content"] == text]

        await eventually(lambda: bool(sent("relayed before")))
        [relayed] = sent("relayed before")
        hook_id = relayed["webhook_id"]
        assert len(webhook_creations(fake, world.general)) == 1

        bridge = await restart(make_bridge, discord_bridge, fake)
        await eventually(lambda: connected(bridge, client.login.id), timeout=30)
        await fake.send_message(world.general, world.alice, "an answer", reply_to=question["id"])
        await fake.send_message(world.general, world.alice, "about yours", reply_to=relayed["id"])
        answer = await admin.wait_for_event(room_id, body_is("an answer"), timeout=30)
        assert reply_target(answer) == asked["event_id"]
        about = await admin.wait_for_event(room_id, body_is("about yours"), timeout=30)
        assert reply_target(about) == mine
        assert answer["sender"] == about["sender"] == world.ghost(world.alice)

        await admin.send_text(room_id, "relayed after")
        await eventually(lambda: bool(sent("relayed after")), timeout=30)
        [again] = sent("relayed after")
        assert again["webhook_id"] == hook_id
        assert len(webhook_creations(fake, world.general)) == 1  # the one before the restart
        live = [h for h in fake.webhooks.values() if h.channel_id == world.general.id]
        assert [h.id for h in live if not h.deleted] == [hook_id]
        # Its echo is the bridge's own after the restart too: bridged once, never back.
        await fake.send_message(world.general, world.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"), timeout=30)
        bodies = [e["content"].get("body") for e in await admin.messages(room_id)]
        assert bodies.count("relayed after") == 1
        assert bodies.count("relayed before") == 1
        # The same room: the portal was kept, not made again.
        row = await bridge.store.get_portal("discord", portal_key(world.general.id))
        assert row is not None and row.mxid == room_id


async def test_a_matrix_reply_after_a_restart_quotes_the_discord_message_bridged_before(
    make_bridge, discord_bridge, discord_world, bridge_env, uid
):
    """The message map read back after a restart: a Matrix reply to an event bridged before
    it names its Discord message (relayed through the webhook, which cannot reply: a quote
    with a jump link to that message: bridges/discord/replies.py)."""
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        asked = await fake.send_message(world.general, world.bob, "still there?")
        question = await admin.wait_for_event(room_id, body_is("still there?"))

        bridge = await restart(make_bridge, discord_bridge, fake)
        await eventually(lambda: connected(bridge, client.login.id), timeout=30)
        await admin.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "yes, after the restart",
                "m.relates_to": {"m.in_reply_to": {"event_id": question["event_id"]}},
            },
        )

        def answers() -> list[dict[str, Any]]:
            return [
                m for m in fake.messages(world.general) if "yes, after the restart" in m["content"]
            ]

        await eventually(lambda: bool(answers()), timeout=30)
        [msg] = answers()
        link = f"https://discord.com/channels/{world.guild.id}/{world.general.id}/{asked['id']}"
        assert link in msg["content"], msg["content"]
        assert "still there?" in msg["content"]
        assert msg["webhook_id"]


async def test_a_personal_login_and_its_dm_survive_a_restart(
    make_bridge, dp_bridge, discord_world, bridge_env, uid, caplog
):
    """``login discord user`` through the management room (the token's message redacted);
    after a restart the login connects again, its DM is the same room (a reply there to a
    message bridged before replies to its event), its Matrix messages are still its
    account's, and its account's own messages still come from its Matrix user."""
    caplog.set_level(logging.DEBUG)
    world, fake = discord_world, discord_world.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await trusted_management_room(alice, dp_bridge)
        ask = await conv.say("login discord user")
        assert "against Discord's terms" in ask, ask
        token = user_token(fake, world.alice)
        done, token_msg = await say_secret(conv, token)
        assert "Alice Liddell" in done, done
        await assert_redacted(conv, token_msg)
        [login_id] = [
            c.login.id
            for c in connector(dp_bridge).clients.values()
            if c.login.user_mxid == alice.user_id
        ]
        await eventually(lambda: connected(dp_bridge, login_id), timeout=30)
        dm = fake.add_dm(world.alice, world.bob)
        before = await fake.send_message(dm, world.bob, "hi before")
        key = portal_key(dm.id, login_id)
        room_id = await portal_room(dp_bridge, alice, key)
        said_before = await alice.wait_for_event(room_id, body_is("hi before"))

        double_puppets = {SERVER_NAME: f"as_token:{bridge_env.dp_token}"}  # as dp_bridge's
        bridge = await restart(
            make_bridge, dp_bridge, fake, **{"double_puppet.secrets": double_puppets}
        )
        await eventually(lambda: connected(bridge, login_id), timeout=30)
        assert connector(bridge).clients[login_id].meta.token == token
        await fake.send_message(dm, world.bob, "a reply after", reply_to=before["id"])
        reply = await alice.wait_for_event(room_id, body_is("a reply after"), timeout=30)
        assert reply["sender"] == world.ghost(world.bob)
        assert reply_target(reply) == said_before["event_id"]
        await alice.send_text(room_id, "hello after")
        await eventually(
            lambda: any(m["content"] == "hello after" for m in fake.messages(dm)), timeout=30
        )
        [sent] = [m for m in fake.messages(dm) if m["content"] == "hello after"]
        assert sent["author"]["id"] == world.alice.id and not sent.get("webhook_id")
        await fake.send_message(dm, world.alice, "from my phone after")
        mine = await alice.wait_for_event(room_id, body_is("from my phone after"), timeout=30)
        assert mine["sender"] == alice.user_id
        row = await bridge.store.get_portal("discord", key)
        assert row is not None and row.mxid == room_id
        said = bodies(await alice.messages(room_id))
        assert said.count("hello after") == 1 and said.count("hi before") == 1
        assert leaks(caplog.records, token) == []
