"""Personal logins (a person's own Discord account, a user token): the login end to end,
sending as themself in a guild portal (not through the webhook) without the gateway echo
coming back (the nonce, even when the echo beats the REST reply), and their own Discord
messages reaching Matrix from their Matrix account (double puppeting) in a guild the bot
bridges. Fake Discord (discord.py on the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

import logging

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from bridgekit.contract.events import RemoteMessage
from tests.conftest import eventually
from tests.discord.conftest import body_is, connector, discord_networks, login_bot, open_channel
from tests.discord.personal_helpers import DP_KEY, bodies, login_user, user_token
from tests.slack.test_e2e_login import assert_redacted, leaks, say_secret
from tests.test_e2e_command_safety import trusted_management_room


async def test_user_login_through_the_management_room_survives_a_restart(
    make_bridge, discord_bridge, discord_world, bridge_env, uid, caplog
):
    """Persistence: runs on both engines."""
    caplog.set_level(logging.DEBUG)
    w = discord_world
    fake = w.fake
    token = user_token(fake, w.alice)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await trusted_management_room(alice, discord_bridge)
        ask = await conv.say("login discord user")
        assert "against Discord's terms" in ask and "bot login is the supported way" in ask
        done, token_msg = await say_secret(conv, token)
        assert "Logged in to discord as Alice Liddell (user)" in done, done
        await assert_redacted(conv, token_msg)
        [client] = connector(discord_bridge).clients.values()
        login_id = client.login.id
        assert login_id.startswith(f"discord-user-{w.alice.id}-")
        await eventually(lambda: client.connected, timeout=20)
        # REST with the bare token (a "Bot " prefix is for bots), IDENTIFY with it too.
        mine = [r for r in fake.requests if r.headers.get("Authorization", "").endswith(token)]
        assert mine and all(r.headers["Authorization"] == token for r in mine)
        assert not fake.requests_to("GET", "/oauth2/applications/@me")
        [session] = fake.sessions_of(w.alice)
        assert session.token == token and session.connected
        # The login works: a DM reaches Matrix.
        dm = fake.add_dm(w.alice, w.bob)
        await fake.send_message(dm, w.bob, "before the restart")
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        await alice.wait_for_event(room_id, body_is("before the restart"))
        # A restart: the login is loaded from the database and its session comes back.
        await make_bridge.stop(discord_bridge)
        bridge = await make_bridge(
            networks=discord_networks(fake), media={"allow": [fake.cdn_host]}
        )
        await eventually(
            lambda: (
                (state := bridge.login_states.get(login_id)) is not None
                and state.state == BridgeStateEvent.CONNECTED
            ),
            timeout=30,
        )
        assert len([s for s in fake.sessions_of(w.alice) if s.connected]) == 1
        await fake.send_message(dm, w.bob, "after the restart")
        await alice.wait_for_event(room_id, body_is("after the restart"), timeout=30)
        await alice.send_text(room_id, "matrix after the restart")
        await eventually(
            lambda: any(m["content"] == "matrix after the restart" for m in fake.messages(dm)),
            timeout=30,
        )
        assert fake.messages(dm)[-1]["author"]["id"] == w.alice.id
    assert leaks(caplog.records, token) == []


@pytest.mark.engine_independent
async def test_personal_login_speaks_as_itself_and_is_not_echoed(
    dp_bridge, discord_world, bridge_env, uid, monkeypatch
):
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
        queued: list[RemoteMessage] = []
        api = connector(dp_bridge).bridge
        real_queue = api.queue_remote_event

        async def spy(login_id, event):
            if isinstance(event, RemoteMessage):
                queued.append(event)
            await real_queue(login_id, event)

        monkeypatch.setattr(api, "queue_remote_event", spy)
        # The gateway's MESSAGE_CREATE reaches the bridge before the REST reply with its id.
        fake.echo_before_reply = True
        await alice.send_text(room_id, "typed on matrix")

        def sent() -> list:
            return [m for m in fake.messages(w.general) if m["content"] == "typed on matrix"]

        await eventually(lambda: bool(sent()))
        [msg] = sent()
        # Discord shows it from Alice's own account: no webhook, no bot.
        assert msg["author"]["id"] == w.alice.id and not msg.get("webhook_id")
        assert msg.get("nonce")
        assert not fake.requests_to("POST", "/webhooks/*")
        await fake.send_message(w.general, w.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        assert bodies(await admin.messages(room_id)).count("typed on matrix") == 1
        # The echo was known by its nonce: the bridge did not even queue it.
        assert [e.id for e in queued if e.id == msg["id"]] == []


@pytest.mark.engine_independent
async def test_own_discord_message_comes_from_the_matrix_account(
    dp_bridge, discord_world, bridge_env, uid
):
    w = discord_world
    fake = w.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_bot(dp_bridge, admin, w)
        await login_user(dp_bridge, alice, fake, w.alice)
        room_id = await open_channel(w, admin, w.general, w.bob)
        # Alice writes from her Discord app: the bot receives it, and on Matrix it is her
        # own account that says it (her double puppet joins the room for it).
        await fake.send_message(w.general, w.alice, "sent from my phone")
        evt = await admin.wait_for_event(room_id, body_is("sent from my phone"))
        assert evt["sender"] == alice.user_id
        assert evt["content"][DP_KEY] == "bridgekit"
        # The double puppet's event is not sent to Discord again.
        await fake.send_message(w.general, w.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        await eventually(lambda: dp_bridge.inbox.pending == 0)
        said = [m["content"] for m in fake.messages(w.general)]
        assert said.count("sent from my phone") == 1
        # Bob's messages still come from his ghost.
        marker = next(e for e in await admin.messages(room_id) if body_is("marker")(e))
        assert marker["sender"] == w.ghost(w.bob)


@pytest.mark.engine_independent
async def test_a_personal_login_leaves_guilds_to_their_bot(
    discord_bridge, discord_world, bridge_env, uid
):
    """A personal login's session sees every guild its account is in; their channels are
    bridged only where a bot login bridges the guild (through that bot), so no room is made
    for a guild nobody bridged, and a bridged guild's message reaches Matrix once."""
    w = discord_world
    fake = w.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with alice, admin:
        await login_user(discord_bridge, alice, fake, w.alice)
        await fake.send_message(w.general, w.bob, "no bot bridges this")
        dm = fake.add_dm(w.alice, w.bob)
        await fake.send_message(dm, w.bob, "but DMs are hers")
        room_id, _ = await alice.wait_for_invite()
        await alice.join(room_id)
        await alice.wait_for_event(room_id, body_is("but DMs are hers"))
        assert await alice.joined_rooms() == [room_id]
        portals = await discord_bridge.store.all_portals()
        assert [p.key.id for p in portals if p.network == "discord"] == [dm.id]
        # Once the admin's bot bridges the guild, its channel comes through the bot, once.
        await login_bot(discord_bridge, admin, w)
        general = await open_channel(w, admin, w.general, w.bob)
        await fake.send_message(w.general, w.bob, "seen by both sessions")
        await admin.wait_for_event(general, body_is("seen by both sessions"))
        await fake.send_message(w.general, w.bob, "marker")
        await admin.wait_for_event(general, body_is("marker"))
        assert bodies(await admin.messages(general)).count("seen by both sessions") == 1
