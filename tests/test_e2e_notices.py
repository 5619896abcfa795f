"""What a connector says to users through the runtime (``BridgeAPI.notify_user``,
``notify_portal``, ``invite_to_portal``), end to end with a real Synapse and the fake network.

Connectors use these for what only the remote side knows: a refused channel join, a room
the user was invited to on the network.
"""

from __future__ import annotations

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from tests.conftest import BridgeEnv
from tests.helpers import body_is, fake, management_room, portal_scene

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_a_notice_to_the_user_lands_in_their_management_room(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        assert not await bridge.notify_user(alice.user_id, "nobody to tell yet")
        conv = await management_room(alice, bridge)
        assert await bridge.notify_user(alice.user_id, "your join was refused")
        assert await conv.next_notice() == "your join was refused"


async def test_a_notice_to_a_portal_comes_from_the_bot_in_its_room(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        key = PortalKey(scene.chat)
        api = fake(bridge).bridge  # the connector's view: the portal is one of its network's
        assert await api.notify_portal(key, "the network is read-only now")
        evt = await scene.alice.wait_for_event(
            scene.room_id, body_is("the network is read-only now")
        )
        assert evt["sender"] == bridge.bot_mxid
        assert evt["content"]["msgtype"] == "m.notice"
        assert not await api.notify_portal(PortalKey(uid("nochat")), "lost")


async def test_a_remote_invitation_brings_the_user_to_the_portal(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client = scene.alice, scene.client
        # An existing portal the user has left: the bot invites them back, with the reason.
        await alice.leave(scene.room_id)
        room = await bridge.invite_to_portal(client.login.id, PortalKey(scene.chat), "come back")
        assert room == scene.room_id
        invited, _ = await alice.wait_for_invite()
        assert invited == scene.room_id
        # A chat without a portal yet: the room is created with the user invited.
        other = uid("chat")
        scene.net.add_chat(other, members=[client.login.remote_id, "bob"])
        created = await bridge.invite_to_portal(client.login.id, PortalKey(other))
        assert created and created != scene.room_id
        invited, _ = await alice.wait_for_invite()
        assert invited == created
        # Unknown logins get nothing.
        assert await bridge.invite_to_portal("no-such-login", PortalKey(other)) is None
