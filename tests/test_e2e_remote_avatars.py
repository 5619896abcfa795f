"""Avatars a network reports as URLs (rooms and ghosts, any connector) go through the guarded
fetcher too: an internal address is never fetched, an allow-listed one is."""

from __future__ import annotations

from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteChatInfoChange,
    RemoteMessage,
)
from bridgekit.testing.media_servers import SECRET, media_servers
from tests.conftest import BridgeEnv
from tests.helpers import body_is, fake, ghost, login


async def test_avatar_urls_to_internal_addresses_are_not_fetched(
    make_bridge, bridge_env: BridgeEnv, uid
):
    async with media_servers() as s:
        bridge = await make_bridge(media={"allow": [f"127.0.0.1:{s.good_port}"]})
        alice = await bridge_env.synapse.register_user(uid("alice"))
        async with alice:
            client = await login(bridge, alice, uid("a"))
            chat, spy, friend = uid("chat"), uid("spy"), uid("friend")
            network = fake(bridge).network
            network.add_chat(
                chat, members=[client.login.remote_id, spy], avatar_url=f"{s.bait}/status"
            )
            network.avatars[spy] = f"http://localhost:{s.bait_port}/status"
            network.avatars[friend] = f"{s.good}/cat.png"
            for sender, text in ((spy, "from the spy"), (friend, "from a friend")):
                await client.emit(
                    RemoteMessage(
                        PortalKey(chat),
                        EventSender(sender),
                        id=uid("m"),
                        content=MessageContent(text),
                    )
                )
            room_id, _ = await alice.wait_for_invite()
            await alice.join(room_id)
            await alice.wait_for_event(room_id, body_is("from a friend"))
            # The room was made without the bait as its avatar; the spy's ghost has none.
            assert not [e for e in alice.history(room_id) if e.get("type") == "m.room.avatar"]
            assert not (await alice.get_profile(ghost(spy))).get("avatar_url")
            # The allow-listed server's avatar was copied.
            assert (
                (await alice.get_profile(ghost(friend))).get("avatar_url", "").startswith("mxc://")
            )
            # A later change to a bait avatar is skipped; the rest of the change still applies.
            await client.emit(
                RemoteChatInfoChange(
                    PortalKey(chat), name="Renamed", avatar_url=f"{s.good}/to-bait.png"
                )
            )
            await alice.wait_for_event(
                room_id,
                lambda e: (
                    e.get("type") == "m.room.name" and e.get("content", {}).get("name") == "Renamed"
                ),
            )
            assert not [e for e in alice.history(room_id) if e.get("type") == "m.room.avatar"]
            assert s.bait_hits == []
            assert all(SECRET.decode() not in str(e) for e in alice.history(room_id))
