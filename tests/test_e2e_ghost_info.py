"""Ghost info over time: a remote user's name, avatar and is-bot flag reach their ghost whenever
the network reports them (RemoteUserInfoChange), not only at first sight. Each distinct avatar
image is uploaded once (keyed by its bytes) and its mxc reused; a report of what the ghost
already shows makes no homeserver request."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from bridgekit.contract.events import EventSender, PortalKey, RemoteChatInfoChange
from bridgekit.testing.media_servers import PNG
from bridgekit.testing.ports import free_port
from tests.conftest import BridgeEnv
from tests.helpers import body_is, count_profile_calls, fake, ghost, login, member_is, open_portal

OTHER_PNG = PNG + b"\x00"  # different bytes (trailing data after IEND)


@asynccontextmanager
async def image_server() -> AsyncIterator[tuple[str, Counter[str]]]:
    """Serves /a.png and /a-copy.png (the same bytes) and /b.png; counts hits per path."""
    hits: Counter[str] = Counter()

    async def image(request: web.Request) -> web.Response:
        hits[request.path] += 1
        body = OTHER_PNG if request.path == "/b.png" else PNG
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{name}", image)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


@pytest.fixture
def homeserver_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_profile_calls(monkeypatch)


async def test_remote_profile_changes_reach_the_ghost(
    make_bridge, bridge_env: BridgeEnv, uid, homeserver_calls: Counter[str]
):
    async with image_server() as (base, hits):
        bridge = await make_bridge(media={"allow": [base.removeprefix("http://")]})
        alice = await bridge_env.synapse.register_user(uid("alice"))
        async with alice:
            client = await login(bridge, alice, uid("a"))
            chat, bob, carol, dave = uid("chat"), uid("bob"), uid("carol"), uid("dave")
            fake(bridge).network.add_chat(chat, members=[client.login.remote_id, bob, carol])
            room_id = await open_portal(bridge, alice, client, chat, first_from=bob)
            await client.remote_message(chat, carol, "carol here")
            await alice.wait_for_event(room_id, body_is("carol here"))
            homeserver_calls.clear()

            # Bob changes his name and avatar: the room shows it, and so does his profile.
            await client.change_profile(bob, name="Bob Renamed", avatar_url=f"{base}/a.png")
            await alice.wait_for_event(
                room_id, member_is(ghost(bob), displayname="Bob Renamed", avatar_url=...)
            )
            bob_profile = await alice.get_profile(ghost(bob))
            assert bob_profile["displayname"] == "Bob Renamed"
            bob_avatar = bob_profile["avatar_url"]
            assert homeserver_calls["upload"] == 1

            # Carol takes the same image from another URL: it is not uploaded again.
            await client.change_profile(carol, avatar_url=f"{base}/a-copy.png")
            await alice.wait_for_event(room_id, member_is(ghost(carol), avatar_url=bob_avatar))
            assert (await alice.get_profile(ghost(carol)))["avatar_url"] == bob_avatar
            assert homeserver_calls["upload"] == 1

            # A room avatar of the same image reuses it too.
            await client.emit(RemoteChatInfoChange(PortalKey(chat), avatar_url=f"{base}/a.png"))
            await alice.wait_for_event(
                room_id,
                lambda e: (
                    e.get("type") == "m.room.avatar"
                    and e.get("content", {}).get("url") == bob_avatar
                ),
            )
            assert homeserver_calls["upload"] == 1

            # Reports of what the ghosts already show cost no homeserver request (nor a fetch):
            # the message after them (same chat, so handled after them) is the checkpoint.
            homeserver_calls.clear()
            fetched = sum(hits.values())
            await client.change_profile(
                bob, name="Bob Renamed", avatar_url=f"{base}/a.png", chat_id=chat
            )
            await client.change_profile(carol, avatar_url=f"{base}/a-copy.png", chat_id=chat)
            await client.remote_message(chat, bob, "nothing changed")
            await alice.wait_for_event(room_id, body_is("nothing changed"))
            assert homeserver_calls == Counter()
            assert sum(hits.values()) == fetched

            # A new image is uploaded; is-bot is kept on the ghost's row; "" removes the avatar.
            await client.change_profile(bob, avatar_url=f"{base}/b.png", is_bot=True)
            await alice.wait_for_event(
                room_id,
                lambda e: (
                    member_is(ghost(bob), avatar_url=...)(e)
                    and e["content"]["avatar_url"] != bob_avatar
                ),
            )
            assert homeserver_calls["upload"] == 1
            api = fake(bridge).bridge
            assert await api.ghost_is_bot(bob) and not await api.ghost_is_bot(carol)
            bridge.store.ghosts._ghosts.clear()  # from the database, not the cache
            row = await bridge.store.get_ghost("fake", bob)
            assert row is not None and row.is_bot and row.avatar_url == f"{base}/b.png"
            await client.change_profile(carol, avatar_url="")
            await alice.wait_for_event(
                room_id,
                lambda e: member_is(ghost(carol))(e) and not e.get("content", {}).get("avatar_url"),
            )

            # A name longer than homeservers accept is cut rather than failing the change.
            await client.change_profile(carol, name="c" * 300)
            await alice.wait_for_event(room_id, member_is(ghost(carol), displayname="c" * 256))

            # A user first seen through a profile report gets a ghost with that profile.
            await client.change_profile(dave, name="Dave D", avatar_url=f"{base}/a.png")

            async def dave_profile() -> dict[str, Any]:
                for _ in range(100):
                    try:
                        profile = await alice.get_profile(ghost(dave))
                    except Exception:
                        profile = {}
                    if profile.get("avatar_url"):
                        return profile
                    await asyncio.sleep(0.1)
                raise AssertionError("dave's ghost never got his profile")

            assert await dave_profile() == {"displayname": "Dave D", "avatar_url": bob_avatar}
            assert homeserver_calls["upload"] == 1  # his avatar was known already


async def test_a_topic_set_by_a_ghost_without_power_is_set_by_the_bot(
    make_bridge, bridge_env: BridgeEnv, uid
):
    """A chat change names who made it (the ghost sets it when it may); a ghost without the
    power (mautrix refuses before asking the homeserver, with IntentError) leaves it to the
    bot, and the change is not lost."""
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, "bob"])
        room_id = await open_portal(bridge, alice, client, chat)
        await client.emit(
            RemoteChatInfoChange(PortalKey(chat), sender=EventSender("bob"), topic="by bob")
        )
        evt = await alice.wait_for_event(
            room_id,
            lambda e: e.get("type") == "m.room.topic" and e["content"].get("topic") == "by bob",
        )
        assert evt["sender"] == bridge.matrix.bot_mxid
