"""``login slack`` through the management room, end to end: each token asked in its own
question, the message carrying it redacted, checked with Slack at once (a wrong one is said
clearly), the login named after auth.test's workspace and user; logout revokes a personal
token; and no token ever reaches the logs."""

from __future__ import annotations

import logging

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, open_channel
from tests.test_e2e_command_safety import is_redacted, trusted_management_room


async def say_secret(conv, token: str) -> tuple[str, str]:
    """Send ``token`` as the answer to the bot's question; returns (the bot's answer, the
    event id of the message, which must be redacted)."""
    for evt in conv.client.history(conv.room_id):
        if conv._is_new_bot_notice(evt):
            conv.seen.add(evt["event_id"])
    event_id = await conv.client.send_text(conv.room_id, token)
    return await conv.next_notice(timeout=20), event_id


async def assert_redacted(conv, event_id: str) -> None:
    await eventually(lambda: is_redacted(conv.client, conv.room_id, event_id), timeout=20)


def leaks(records, *tokens: str) -> list[str]:
    """Log records that hold a token. aiosqlite's own DEBUG log shows the parameters of every
    statement (the login row holds the tokens): it is not the bridge's logging, and is left
    out (a deployment logs it only with aiosqlite at DEBUG)."""
    full = logging.Formatter("%(name)s %(message)s")  # with tracebacks and stack info
    texts = [full.format(r) for r in records if r.name != "aiosqlite"]
    return [text[:300] for text in texts for token in tokens if token in text]


async def test_app_login_through_the_management_room(
    slack_bridge, slack_world, bridge_env, uid, caplog
):
    caplog.set_level(logging.DEBUG)
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await trusted_management_room(admin, slack_bridge)
        ask = await conv.say("login slack app")
        assert "bot token" in ask and "xoxb-" in ask
        ask, bot_msg = await say_secret(conv, slack_world.bot_token)
        assert "app-level token" in ask
        done, app_msg = await say_secret(conv, slack_world.app_token)
        assert "Logged in to slack as Acme (app " in done, done
        team_bot = fake.users[fake.teams[slack_world.team.id].bot_user_id]
        assert team_bot.name in done
        await assert_redacted(conv, bot_msg)
        await assert_redacted(conv, app_msg)
        await eventually(lambda: fake.connected_sockets == 1, timeout=20)
        # The login works: Slack -> Matrix and back.
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        await admin.send_text(room_id, "via the new login")
        await fake.wait_for(
            lambda r: r.method == "chat.postMessage" and r.params.get("text") == "via the new login"
        )
        assert leaks(caplog.records, slack_world.bot_token, slack_world.app_token) == []
        assert len(caplog.records) > 100  # DEBUG logging was on: the check means something


@pytest.mark.parametrize(
    "flow,token,error",
    [
        ("user", "xoxp-1-not-a-real-token", "invalid_auth"),
        ("app", "xoxb-1-not-a-real-token", "invalid_auth"),
        ("user", "hello", "a user token starts with xoxp-"),
    ],
)
async def test_wrong_token_is_refused_clearly(
    slack_bridge, slack_world, bridge_env, uid, flow, token, error, caplog
):
    caplog.set_level(logging.DEBUG)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await trusted_management_room(alice, slack_bridge)
        await conv.say(f"login slack {flow}")
        answer, msg = await say_secret(conv, token)
        assert answer.startswith("Login failed") and error in answer, answer
        assert token not in answer
        await assert_redacted(conv, msg)
        assert connector(slack_bridge).clients == {}
        assert leaks(caplog.records, token) == []


async def test_logout_revokes_a_personal_token(slack_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await trusted_management_room(alice, slack_bridge)
        await conv.say("login slack user")
        token = fake.user_token(slack_world.alice.id)
        done, _ = await say_secret(conv, token)
        assert "Logged in to slack as Acme (user alice)" in done, done
        login_id = next(iter(connector(slack_bridge).clients))
        await eventually(
            lambda: slack_bridge.login_states[login_id].state == BridgeStateEvent.CONNECTED
        )
        answer = await conv.say("logout slack")
        assert "Logged out of slack" in answer
        call = await fake.wait_for(lambda r: r.method == "auth.revoke")
        assert call.token == token and call.response == {"ok": True, "revoked": True}
        assert fake.tokens[token].revoked
        assert connector(slack_bridge).clients == {}


async def test_logout_of_an_app_login_keeps_the_workspace_app(
    slack_bridge, slack_world, bridge_env, uid
):
    """The bot token is the workspace's installation, shared by everyone: logging out the
    bridge's app login closes its socket but must not uninstall the app."""
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        conv = await trusted_management_room(admin, slack_bridge)
        await conv.say("login slack app")
        await say_secret(conv, slack_world.bot_token)
        await say_secret(conv, slack_world.app_token)
        await eventually(lambda: fake.connected_sockets == 1, timeout=20)
        assert "Logged out of slack" in await conv.say("logout slack")
        await eventually(lambda: fake.connected_sockets == 0, timeout=20)
        assert fake.calls("auth.revoke") == []
        assert not fake.tokens[slack_world.bot_token].revoked
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, "nobody listens")
        assert body_is("nobody listens")
