"""Discord embeds and stickers on Matrix: fake Discord (real discord.py on the bridge's side)
<-> bridge <-> real Synapse.

A rich embed (a bot's, a webhook's) is a formatted text part (``embed:<n>``): the title
linked to its URL, the description and field values as Discord markdown, the footer; its
picture is an image part of its own when it is on an allowed Discord media host, else a link.
Discord's previews of a URL in the text are not bridged. Stickers are images (PNG, APNG,
GIF from the CDN); a Lottie sticker is its name."""

from __future__ import annotations

import pytest

from tests.discord.conftest import body_is, login_bot, open_channel
from tests.discord.media_helpers import media_bytes, media_event, notice_with, parts_of, png

pytestmark = pytest.mark.engine_independent

GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


def html_has(*pieces: str):
    def match(e: dict) -> bool:
        html = str(e.get("content", {}).get("formatted_body", ""))
        return e.get("type") == "m.room.message" and all(p in html for p in pieces)

    return match


async def test_a_rich_embed_is_formatted_text_and_its_picture_an_image(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        picture = png(8, 8)
        proxied = f"{fake.cdn_url}/avatars/0/{fake.add_image(picture)}.png"
        rich = {
            "type": "rich",
            "title": "Release <1.0>",
            "url": "https://example.com/release",
            "description": "**big** news",
            "fields": [{"name": "Version", "value": "`1.0`", "inline": True}],
            "footer": {"text": "release bot"},
            "image": {"url": "https://example.com/big.png", "proxy_url": proxied},
        }
        elsewhere = {
            "type": "rich",
            "description": "a picture elsewhere",
            "thumbnail": {"url": "https://example.org/thumb.png"},
        }
        sent = await fake.send_message(
            world.general, world.bob, "new release", embeds=[rich, elsewhere]
        )
        text = await admin.wait_for_event(room_id, body_is("new release"))
        embed = await admin.wait_for_event(
            room_id,
            html_has(
                '<a href="https://example.com/release">Release &lt;1.0&gt;</a>',
                "<strong>big</strong> news",
                "<strong>Version</strong><br><code>1.0</code>",
                "<sub>release bot</sub>",
            ),
        )
        assert "Release <1.0> (https://example.com/release)" in embed["content"]["body"]
        image = await admin.wait_for_event(
            room_id, lambda e: e.get("content", {}).get("msgtype") == "m.image"
        )
        base, token = bridge_env.synapse.base_url, admin.access_token
        assert await media_bytes(base, token, image["content"]["url"]) == picture
        linked = await admin.wait_for_event(room_id, html_has("a picture elsewhere"))
        assert "https://example.org/thumb.png" in linked["content"]["body"]
        assert {e["sender"] for e in (text, embed, image, linked)} == {world.ghost(world.bob)}
        assert await parts_of(discord_bridge, world.general, sent["id"], 4) == {
            "": text["event_id"],
            "embed:0": embed["event_id"],
            "embed:0:image": image["event_id"],
            "embed:1": linked["event_id"],
        }


async def test_a_link_preview_is_not_bridged(discord_bridge, discord_world, bridge_env, uid):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        url = "https://example.com/page"
        preview = {"type": "article", "url": url, "title": "The Page", "description": "about"}
        sent = await fake.send_message(world.general, world.bob, f"see {url}", embeds=[preview])
        await admin.wait_for_event(room_id, body_is(f"see {url}"))
        await fake.send_message(world.general, world.bob, "after")
        await admin.wait_for_event(room_id, body_is("after"))
        bodies = [str(e["content"].get("body")) for e in await admin.messages(room_id)]
        assert not [b for b in bodies if "The Page" in b]
        assert list(await parts_of(discord_bridge, world.general, sent["id"], 1)) == [""]


async def test_stickers_are_images_and_lottie_ones_their_names(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        wave = png(16, 16)
        fake.add_sticker_image("7001", wave)
        fake.add_sticker_image("7002", GIF)
        sent = await fake.send_message(
            world.general, world.bob, "", sticker={"id": "7001", "name": "Wave", "format_type": 1}
        )
        png_sticker = await admin.wait_for_event(room_id, media_event("Wave"))
        assert png_sticker["content"]["msgtype"] == "m.image"
        assert png_sticker["content"]["info"]["mimetype"] == "image/png"
        base, token = bridge_env.synapse.base_url, admin.access_token
        assert await media_bytes(base, token, png_sticker["content"]["url"]) == wave
        assert await parts_of(discord_bridge, world.general, sent["id"], 1) == {
            "": png_sticker["event_id"]
        }
        await fake.send_message(
            world.general,
            world.bob,
            "gif",
            sticker={"id": "7002", "name": "Spin", "format_type": 4},
        )
        gif = await admin.wait_for_event(room_id, media_event("Spin"))
        assert gif["content"]["info"]["mimetype"] == "image/gif"
        await fake.send_message(
            world.general, world.bob, "", sticker={"id": "7003", "name": "Dance", "format_type": 3}
        )
        await admin.wait_for_event(room_id, notice_with("[sticker: Dance]"))
        assert "/stickers/7003.json" not in fake.cdn_requests
        assert {"/stickers/7001.png", "/stickers/7002.gif"} <= set(fake.cdn_requests)
