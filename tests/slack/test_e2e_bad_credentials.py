"""Dead tokens (mautrix-slack #31, #62; matrix-appservice-slack #683, #592, #480): Slack's
``invalid_auth`` / ``token_revoked`` / ``account_inactive`` at connect, on a Web API call, or
in slack-sdk's Socket Mode reconnect loop turn the login BAD_CREDENTIALS, tell its user once
in their management room what to do, and stop every retry of that login."""

from __future__ import annotations

import asyncio

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.helpers import management_room
from tests.slack.conftest import login_app, login_user, open_channel

pytestmark = pytest.mark.engine_independent


def bad_notices(conv) -> list[str]:
    return [
        e["content"]["body"]
        for e in conv.client.history(conv.room_id)
        if e.get("sender") == conv.bot
        and e.get("type") == "m.room.message"
        and "BAD_CREDENTIALS" in e["content"].get("body", "")
    ]


def requests_with(fake, *tokens: str) -> int:
    return sum(1 for r in fake.requests if r.token in tokens or r.kind == "socket")


async def assert_quiet(fake, tokens: tuple[str, ...], seconds: float = 7.0) -> None:
    """No request with the login's tokens (nor any socket connect) for ``seconds`` (longer
    than slack-sdk's 5 s reconnect interval)."""
    before = requests_with(fake, *tokens)
    await asyncio.sleep(seconds)
    assert requests_with(fake, *tokens) == before


async def test_app_token_revoked_in_the_reconnect_loop(slack_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await management_room(admin, slack_bridge)
        client = await login_app(slack_bridge, admin, slack_world)
        await eventually(lambda: client.connected, timeout=20)
        app_token = slack_world.app_token
        fake.revoke(app_token, "invalid_auth")
        assert await fake.drop_sockets() == 1
        # slack-sdk notices the dead socket and asks apps.connections.open for a new URL
        await fake.wait_for(
            lambda r: (
                r.method == "apps.connections.open"
                and r.token == app_token
                and (r.response or {}).get("error") == "invalid_auth"
            ),
            timeout=30,
        )
        state = slack_bridge.login_states[client.login.id]
        await eventually(lambda: state.state == BridgeStateEvent.BAD_CREDENTIALS, timeout=10)
        notice = await conv.next_notice(timeout=20)
        assert "BAD_CREDENTIALS" in notice
        assert "app-level token" in notice and "invalid_auth" in notice
        assert "login slack app" in notice
        await assert_quiet(fake, (app_token, slack_world.bot_token))
        assert len(bad_notices(conv)) == 1
        assert client.socket is None and not client.connected


@pytest.mark.parametrize("error", ["token_revoked", "account_inactive"])
async def test_bot_token_refused_on_a_web_api_call(
    slack_bridge, slack_world, bridge_env, uid, error
):
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await management_room(admin, slack_bridge)
        client = await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        bot_token = slack_world.bot_token
        fake.revoke(bot_token, error)
        await admin.send_text(room_id, "into the void")
        await fake.wait_for(lambda r: r.method == "chat.postMessage" and r.token == bot_token)
        state = slack_bridge.login_states[client.login.id]
        await eventually(lambda: state.state == BridgeStateEvent.BAD_CREDENTIALS, timeout=10)
        assert error in state.message and "bot token" in state.message
        notice = await conv.next_notice(timeout=20)
        assert "BAD_CREDENTIALS" in notice and "login slack app" in notice
        # The socket of the dead login is closed: no more events are taken for it.
        await eventually(lambda: fake.connected_sockets == 0, timeout=10)
        await admin.send_text(room_id, "again")  # no relay is left: nothing is tried
        await assert_quiet(fake, (bot_token, slack_world.app_token))
        assert len(bad_notices(conv)) == 1


async def test_personal_token_refused_at_connect(slack_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, slack_bridge)
        client = await login_user(slack_bridge, alice, slack_world, slack_world.alice)
        token = fake.user_token(slack_world.alice.id)
        fake.revoke(token, "token_revoked")
        await client.disconnect()
        await client.connect()  # as after a restart: auth.test is refused
        state = slack_bridge.login_states[client.login.id]
        assert state.state == BridgeStateEvent.BAD_CREDENTIALS
        notice = await conv.next_notice(timeout=20)
        assert "user token was revoked" in notice and "login slack user" in notice
        await client.connect()  # a dead login does not even try
        await assert_quiet(fake, (token,), seconds=3)
        assert len(bad_notices(conv)) == 1


async def test_transient_failure_at_connect_is_retried(slack_bridge, slack_world, bridge_env, uid):
    """Only a dead token stops a login: a failed ``auth.test`` (connection dropped) is a
    passing disconnect, retried."""
    fake = slack_world.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login_user(slack_bridge, alice, slack_world, slack_world.alice)
        await client.disconnect()
        fake.disconnect("auth.test", times=3)  # the SDK retries twice, then gives up
        await client.connect()
        state = slack_bridge.login_states[client.login.id]
        assert state.state == BridgeStateEvent.TRANSIENT_DISCONNECT
        await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=20)
        assert not client.dead


async def test_logging_in_again_after_a_revoked_token_brings_the_login_back(
    slack_bridge, slack_world, bridge_env, uid
):
    """What the notice says to do works: `login slack app` with new tokens replaces the dead
    login (same login, now connected), and the bridge relays again."""
    from tests.slack.test_e2e_login import say_secret
    from tests.test_e2e_command_safety import trusted_management_room

    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await trusted_management_room(admin, slack_bridge)
        client = await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        old_bot, old_app = slack_world.bot_token, slack_world.app_token
        fake.revoke(old_bot, "token_revoked")
        fake.revoke(old_app, "token_revoked")
        await client.mark_dead("token_revoked")
        assert "BAD_CREDENTIALS" in await conv.next_notice(timeout=20)
        await conv.say("login slack app")
        await say_secret(conv, slack_world.bot_token)  # the fake issues new tokens
        done, _ = await say_secret(conv, slack_world.app_token)
        assert "Logged in to slack" in done and client.login.id in done
        state = slack_bridge.login_states[client.login.id]
        await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=20)
        await eventually(lambda: fake.connected_sockets == 1, timeout=20)
        clients = slack_bridge.logins.clients_of(admin.user_id, "slack")
        assert len(clients) == 1 and not clients[0].dead
        await admin.send_text(room_id, "relayed again")
        call = await fake.wait_for(
            lambda r: r.method == "chat.postMessage" and r.params.get("text") == "relayed again"
        )
        assert call.token == slack_world.bot_token != old_bot
