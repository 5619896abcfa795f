"""Custom emoji reactions (Discord, Slack): the image is uploaded once per emoji through the
guarded fetcher, the Matrix reaction's key is its mxc with the ``:name:`` shortcode (MSC4027),
a remote removal takes it back, and a Matrix reaction with that mxc reaches the network with
the emoji's id."""

from __future__ import annotations

from typing import Any

import aiohttp

from bridgekit.contract.events import EventSender, PortalKey, RemoteReaction, RemoteReactionRemove
from bridgekit.testing.media_servers import MediaServers, media_servers
from tests.conftest import BridgeEnv
from tests.helpers import body_is, fake, ghost, portal_scene

SHORTCODE = "com.beeper.reaction.shortcode"


def reaction_by(sender: str, target: str):
    def match(e: dict[str, Any]) -> bool:
        rel = e.get("content", {}).get("m.relates_to", {})
        return e.get("type") == "m.reaction" and e["sender"] == sender and rel["event_id"] == target

    return match


async def test_custom_emoji_reactions_both_ways(make_bridge, bridge_env: BridgeEnv, uid):
    async with media_servers() as s:
        bridge = await make_bridge(media={"allow": [f"127.0.0.1:{s.good_port}"]})
        async with portal_scene(bridge, bridge_env, uid) as scene:
            alice, client, chat, room_id, net = scene
            mid = await client.remote_message(chat, "bob", "react to me")
            target = (await alice.wait_for_event(room_id, body_is("react to me")))["event_id"]
            emoji_id = uid("e")

            def party(sender: str) -> RemoteReaction:
                return RemoteReaction(
                    PortalKey(chat),
                    EventSender(sender),
                    target_id=mid,
                    key=":party:",
                    emoji_id=emoji_id,
                    emoji_url=f"{s.good}/emoji/party.png",
                    emoji_name="party",
                )

            await client.emit(party("bob"))
            await client.emit(party("carl"))
            bobs = await alice.wait_for_event(room_id, reaction_by(ghost("bob"), target))
            carls = await alice.wait_for_event(room_id, reaction_by(ghost("carl"), target))
            key = bobs["content"]["m.relates_to"]["key"]
            assert key.startswith("mxc://")
            assert carls["content"]["m.relates_to"]["key"] == key
            assert bobs["content"][SHORTCODE] == ":party:"
            # Fetched once for both reactions, and the mxc serves the emoji's image.
            assert s.emoji_hits == ["party"]
            async with aiohttp.ClientSession() as http, http.get(await bridge.media_url(key)) as r:
                assert r.status == 200
                assert await r.read() == MediaServers.emoji_image("party")

            # The network says bob took his reaction back: by the emoji's id.
            await client.emit(
                RemoteReactionRemove(
                    PortalKey(chat), EventSender("bob"), target_id=mid, emoji_id=emoji_id
                )
            )
            await alice.wait_for_event(
                room_id,
                lambda e: e.get("type") == "m.room.redaction" and e["redacts"] == bobs["event_id"],
            )

            # Alice reacts with the same image: the network gets the emoji's id and name.
            mine = await alice.react(room_id, target, key)
            sent = await net.wait_for(lambda i: i.kind == "reaction" and i.data.event_id == mine)
            assert sent.data.key == key
            assert (sent.data.emoji_id, sent.data.emoji_name) == (emoji_id, "party")
            assert sent.data.target_id == mid
            undo = await alice.redact(room_id, mine)
            sent = await net.wait_for(
                lambda i: i.kind == "reaction_remove" and i.data.event_id == undo
            )
            assert sent.data.emoji_id == emoji_id
            # A plain reaction carries no emoji id.
            plain = await alice.react(room_id, target, "👍")
            sent = await net.wait_for(lambda i: i.kind == "reaction" and i.data.event_id == plain)
            assert sent.data.emoji_id is None


async def test_custom_emoji_image_on_an_internal_address_is_not_fetched(
    make_bridge, bridge_env: BridgeEnv, uid
):
    """The image URL is the network's (untrusted): the fetcher refuses an internal address,
    and the reaction is still bridged, as its ``:name:`` text."""
    async with media_servers() as s:
        bridge = await make_bridge(media={"allow": [f"127.0.0.1:{s.good_port}"]})
        async with portal_scene(bridge, bridge_env, uid) as scene:
            alice, client, chat, room_id, net = scene
            mid = await client.remote_message(chat, "bob", "react to me")
            target = (await alice.wait_for_event(room_id, body_is("react to me")))["event_id"]
            await client.emit(
                RemoteReaction(
                    PortalKey(chat),
                    EventSender("bob"),
                    target_id=mid,
                    emoji_id=uid("e"),
                    emoji_url=f"{s.bait}/status",
                    emoji_name="evil\n:name",
                )
            )
            evt = await alice.wait_for_event(room_id, reaction_by(ghost("bob"), target))
            assert evt["content"]["m.relates_to"]["key"] == ":evil_name:"
            assert SHORTCODE not in evt["content"]
            assert s.bait_hits == []


async def test_custom_emoji_are_known_after_a_restart(make_bridge, bridge_env: BridgeEnv, uid):
    """The emoji's mapping is durable: after a restart its image is not fetched again, a
    Matrix reaction with its mxc still carries its id, and a remote removal still finds it."""
    async with media_servers() as s:
        bridge = await make_bridge(media={"allow": [f"127.0.0.1:{s.good_port}"]})
        async with portal_scene(bridge, bridge_env, uid) as scene:
            alice, client, chat, room_id, net = scene
            mid = await client.remote_message(chat, "bob", "react to me")
            target = (await alice.wait_for_event(room_id, body_is("react to me")))["event_id"]
            emoji_id = uid("e")

            def wave(sender: str, target_id: str = mid) -> RemoteReaction:
                return RemoteReaction(
                    PortalKey(chat),
                    EventSender(sender),
                    target_id=target_id,
                    emoji_id=emoji_id,
                    emoji_url=f"{s.good}/emoji/wave.png",
                    emoji_name="wave",
                )

            await client.emit(wave("bob"))
            bobs = await alice.wait_for_event(room_id, reaction_by(ghost("bob"), target))
            key = bobs["content"]["m.relates_to"]["key"]
            await make_bridge.stop(bridge)

            bridge = await make_bridge(media={"allow": [f"127.0.0.1:{s.good_port}"]})
            net = fake(bridge).network
            net.add_chat(chat, members=[client.login.remote_id, "bob"])
            client = fake(bridge).clients[client.login.id]
            await client.emit(wave("carl"))
            carls = await alice.wait_for_event(room_id, reaction_by(ghost("carl"), target))
            assert carls["content"]["m.relates_to"]["key"] == key
            assert s.emoji_hits == ["wave"]
            await client.emit(
                RemoteReactionRemove(
                    PortalKey(chat), EventSender("bob"), target_id=mid, emoji_id=emoji_id
                )
            )
            await alice.wait_for_event(
                room_id,
                lambda e: e.get("type") == "m.room.redaction" and e["redacts"] == bobs["event_id"],
            )
            mine = await alice.react(room_id, target, key)
            sent = await net.wait_for(lambda i: i.kind == "reaction" and i.data.event_id == mine)
            assert (sent.data.emoji_id, sent.data.emoji_name) == (emoji_id, "wave")
