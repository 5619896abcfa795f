"""The management room, end to end against a real Synapse."""

from __future__ import annotations

import logging

from bridgekit.bridge import Bridge
from tests.conftest import BridgeEnv, eventually
from tests.helpers import login_fake, management_room


async def test_bot_accepts_dm_and_help_lists_commands(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        reply = await conv.say("help")
        for cmd in ("login", "logout", "list-logins", "list-portals", "set-relay", "login-matrix"):
            assert cmd in reply
        assert "delete-portal" not in reply  # admin only
        detail = await conv.say("help login")
        assert "<network>" in detail


async def test_login_list_logout_flow(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        assert "Logged in to fake as alice-remote" in await login_fake(conv, "alice-remote")
        listing = await conv.say("list-logins")
        assert "alice-remote" in listing and "CONNECTED" in listing
        assert len(await bridge.store.logins(alice.user_id)) == 1
        assert "Logged out" in await conv.say("logout fake")
        assert "no logins" in await conv.say("list-logins")
        assert await bridge.store.logins(alice.user_id) == []


async def test_wrong_password_is_reported(bridge: Bridge, bridge_env: BridgeEnv, uid):
    bridge.connectors["fake"].network.passwords["bob-remote"] = "secret"
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with bob:
        conv = await management_room(bob, bridge)
        assert "Login failed: wrong password" in await login_fake(conv, "bob-remote", "nope")
        assert await bridge.store.logins(bob.user_id) == []


async def test_login_can_be_cancelled(bridge: Bridge, bridge_env: BridgeEnv, uid):
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with carol:
        conv = await management_room(carol, bridge)
        assert "username" in await conv.say("login fake")
        assert "cancelled" in await conv.say("cancel")
        assert "not a command" in await conv.say("frobnicate")


async def test_non_permitted_user_is_refused(make_bridge, bridge_env: BridgeEnv, uid, caplog):
    # Only admin is permitted: everyone else on the server is a stranger to the bridge.
    caplog.set_level(logging.INFO, logger="bridgekit")
    bridge = await make_bridge(permissions={"@admin:bridgekit.test": "admin"})
    mallory = await bridge_env.synapse.register_user(uid("mallory"))
    async with mallory:
        room_id = await mallory.create_room(invite=[bridge.bot_mxid], is_direct=True)

        async def bot_left() -> bool:
            members = await mallory.request(
                "GET", f"/rooms/{room_id}/state/m.room.member/{bridge.bot_mxid}"
            )
            return members.get("membership") == "leave"

        await eventually(bot_left)
        assert any("not permitted" in r.getMessage() for r in caplog.records)


async def test_connector_commands_are_listed_and_run(bridge: Bridge, bridge_env: BridgeEnv, uid):
    bridge.connectors["fake"].network.add_chat("lobby")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        conv = await management_room(alice, bridge)
        assert "fake-chats" in await conv.say("help")
        assert "Chats: lobby" in await conv.say("fake-chats")
