"""Discord attachments on Matrix: fake Discord (real discord.py on the bridge's side) <->
bridge <-> real Synapse.

A message with attachments is one remote message in parts: its text, then one file per
attachment (``att:<id>``), each downloaded from an allowed Discord media host through the
runtime's guarded fetcher and uploaded to the homeserver. What is not copied (too large for
``media.max_size``, gone, on a host the operator did not allow) is a notice with its link:
the message itself always arrives."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from bridgekit.bridge import Bridge
from bridges.discord.media import SPOILER_INFO
from tests.discord.conftest import body_is, discord_networks, login_bot, open_channel
from tests.discord.media_helpers import (
    OGG,
    PDF,
    elsewhere,  # noqa: F401 - a fixture
    media_bytes,
    media_event,
    notice_with,
    parts_of,
    png,
)

pytestmark = pytest.mark.engine_independent

MAX_SIZE = 4000


@pytest.fixture
async def small_media_bridge(make_bridge: Any, discord_fake: Any, elsewhere: Any) -> Bridge:  # noqa: F811
    """media.max_size 4000 bytes; the runtime would fetch from the other loopback server
    too (only the connector's own allow-list keeps it out)."""
    return await make_bridge(
        networks=discord_networks(discord_fake),
        media={
            "allow": [discord_fake.cdn_host, f"127.0.0.1:{elsewhere[0]}"],
            "max_size": MAX_SIZE,
        },
    )


async def test_attachments_reach_matrix_as_parts_after_the_text(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        image, secret = png(64, 48), png(3, 2)
        sent = await fake.send_message(
            world.general,
            world.bob,
            "look **here**",
            attachments=[
                ("cat.png", image, "image/png", {"width": 64, "height": 48}),
                ("report.pdf", PDF, "application/pdf"),
                ("SPOILER_secret.png", secret, "image/png", {"width": 3, "height": 2}),
                ("voice.ogg", OGG, "audio/ogg"),
            ],
        )
        text = await admin.wait_for_event(room_id, body_is("look **here**"))
        pic = await admin.wait_for_event(room_id, media_event("cat.png"))
        doc = await admin.wait_for_event(room_id, media_event("report.pdf"))
        spoiler = await admin.wait_for_event(room_id, media_event("SPOILER_secret.png"))
        voice = await admin.wait_for_event(room_id, media_event("voice.ogg"))
        events = (text, pic, doc, spoiler, voice)
        assert {e["sender"] for e in events} == {world.ghost(world.bob)}
        assert pic["content"]["msgtype"] == "m.image"
        assert pic["content"]["info"] == {
            "mimetype": "image/png",
            "size": len(image),
            "w": 64,
            "h": 48,
        }
        assert doc["content"]["msgtype"] == "m.file"
        assert doc["content"]["info"] == {"mimetype": "application/pdf", "size": len(PDF)}
        assert spoiler["content"]["msgtype"] == "m.image"
        assert spoiler["content"]["info"][SPOILER_INFO] is True
        assert SPOILER_INFO not in pic["content"]["info"]
        assert voice["content"]["msgtype"] == "m.audio"
        base, token = bridge_env.synapse.base_url, admin.access_token
        assert await media_bytes(base, token, pic["content"]["url"]) == image
        assert await media_bytes(base, token, doc["content"]["url"]) == PDF
        assert await media_bytes(base, token, spoiler["content"]["url"]) == secret
        # In order, one message: the text first, then each attachment under its part id.
        order = [e["event_id"] for e in await admin.messages(room_id)]
        assert sorted(order.index(e["event_id"]) for e in events) == [
            order.index(e["event_id"]) for e in events
        ]
        atts = [a["id"] for a in sent["attachments"]]
        assert await parts_of(discord_bridge, world.general, sent["id"], 5) == {
            "": text["event_id"],
            f"att:{atts[0]}": pic["event_id"],
            f"att:{atts[1]}": doc["event_id"],
            f"att:{atts[2]}": spoiler["event_id"],
            f"att:{atts[3]}": voice["event_id"],
        }
        # Downloaded from the fake's CDN, no token sent.
        assert [p for p in fake.cdn_requests if p.startswith("/attachments/")] == [
            f"/attachments/{world.general.id}/{a}/{n}"
            for a, n in zip(
                atts, ["cat.png", "report.pdf", "SPOILER_secret.png", "voice.ogg"], strict=True
            )
        ]

        # A file without text: the file is the message's first part.
        solo = await fake.send_message(
            world.general, world.bob, "", attachments=[("solo.png", image, "image/png")]
        )
        only = await admin.wait_for_event(room_id, media_event("solo.png"))
        assert only["content"]["msgtype"] == "m.image"
        assert await parts_of(discord_bridge, world.general, solo["id"], 1) == {
            "": only["event_id"]
        }


async def test_a_file_claiming_to_be_an_image_is_a_file(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        page = b"<html><script>alert(1)</script></html>"
        await fake.send_message(
            world.general, world.bob, "", attachments=[("cat.png", page, "image/png")]
        )
        evt = await admin.wait_for_event(room_id, media_event("cat.png"))
        assert evt["content"]["msgtype"] == "m.file"
        assert evt["content"]["info"]["mimetype"] == "application/octet-stream"


async def test_too_large_gone_and_foreign_attachments_are_notices_with_their_links(
    small_media_bridge,
    discord_world,
    bridge_env,
    uid,
    elsewhere,  # noqa: F811
):
    world, fake = discord_world, discord_world.fake
    other_port, other_hits = elsewhere
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(small_media_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        big = png(200, 200) + b"\x00" * MAX_SIZE
        foreign = f"http://127.0.0.1:{other_port}/attachments/1/2/evil.png"
        gone = f"{fake.cdn_url}/attachments/{world.general.id}/404/gone.png"
        sent = await fake.send_message(
            world.general,
            world.bob,
            "three files",
            attachments=[
                ("big.png", big, "image/png"),
                ("evil.png", png(2, 2), "image/png", {"url": foreign}),
                ("gone.png", png(2, 2), "image/png", {"url": gone}),
                ("fine.png", png(2, 2), "image/png"),
            ],
        )
        await admin.wait_for_event(room_id, body_is("three files"))
        too_large = await admin.wait_for_event(room_id, notice_with("big.png", "too large"))
        assert sent["attachments"][0]["url"] in too_large["content"]["body"]
        refused = await admin.wait_for_event(room_id, notice_with("evil.png", "not on a Discord"))
        assert foreign in refused["content"]["body"]
        missing = await admin.wait_for_event(room_id, notice_with("gone.png", "could not"))
        assert gone in missing["content"]["body"]
        fine = await admin.wait_for_event(room_id, media_event("fine.png"))
        assert fine["content"]["msgtype"] == "m.image"
        assert other_hits == [], "a request reached a host that is not a Discord media host"


@pytest.fixture
async def slow_host() -> Any:
    """A media host (listed in ``media_hosts``) that takes 2 s to answer."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(body=PDF, content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


async def test_a_slow_download_does_not_let_the_next_message_overtake(
    make_bridge, discord_world, bridge_env, uid, slow_host
):
    world, fake = discord_world, discord_world.fake
    bridge = await make_bridge(
        networks=discord_networks(fake, media_hosts=[fake.cdn_host, slow_host]),
        media={"allow": [fake.cdn_host, slow_host]},
    )
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        url = f"http://{slow_host}/attachments/1/2/slow.pdf"
        await fake.send_message(
            world.general,
            world.bob,
            "",
            attachments=[("slow.pdf", PDF, "application/pdf", {"url": url})],
        )
        await fake.send_message(world.general, world.alice, "next")
        await admin.wait_for_event(room_id, body_is("next"), timeout=30)
        bodies = [
            e["content"].get("body")
            for e in await admin.messages(room_id)
            if e["type"] == "m.room.message"
        ]
        assert bodies.index("slow.pdf") < bodies.index("next")
