"""Matrix files to Discord: real Synapse <-> bridge <-> fake Discord.

A Matrix file is uploaded (multipart) through the channel's webhook under the relayed
sender's name, with its caption; the Discord message's id maps to the Matrix event and its
gateway echo is not bridged back. A file over ``max_file_size`` becomes a link to it (the
runtime's signed media link): never a failed send."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bridgekit.bridge import Bridge
from bridges.discord.ids import portal_key
from tests.conftest import eventually
from tests.discord.conftest import body_is, connector, discord_networks, login_bot, open_channel
from tests.discord.media_helpers import PDF, png, upload
from tests.discord.personal_helpers import login_user, portal_room
from tests.harness.discord_fake import MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent

LIMIT = 2000


@pytest.fixture
async def small_uploads_bridge(make_bridge: Any, discord_fake: Any) -> Bridge:
    return await make_bridge(
        networks=discord_networks(discord_fake, max_file_size=LIMIT),
        media={"allow": [discord_fake.cdn_host]},
    )


async def relayed_user(bridge_env: Any, uid: Any, admin: Any, room_id: str, name: str) -> Any:
    carol = await bridge_env.synapse.register_user(uid("carol"))
    await carol.__aenter__()
    await carol.set_displayname(name)
    await admin.invite(room_id, carol.user_id)
    await carol.join(room_id)
    return carol


async def test_a_matrix_file_is_uploaded_through_the_webhook_with_its_caption(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await relayed_user(bridge_env, uid, admin, room_id, "Carol C")
        async with carol:
            base = bridge_env.synapse.base_url
            image = png(32, 32)
            mxc = await upload(base, carol.access_token, image, "cat.png", "image/png")
            event_id = await carol.send_message(
                room_id,
                {
                    "msgtype": "m.image",
                    "body": "my **cat**",
                    "filename": "cat.png",
                    "url": mxc,
                    "info": {"mimetype": "image/png", "size": len(image), "w": 32, "h": 32},
                },
            )
            doc = await upload(base, carol.access_token, PDF, "report.pdf", "application/pdf")
            doc_event = await carol.send_message(
                room_id,
                {"msgtype": "m.file", "body": "report.pdf", "url": doc, "info": {"size": len(PDF)}},
            )

            def sent() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if m.get("attachments")]

            await eventually(lambda: len(sent()) == 2, timeout=30)
            pic, pdf = sent()
            assert pic.get("webhook_id") and pic["author"]["username"].startswith("Carol C")
            # a plain caption's asterisks stay literal on Discord, as in a message's text
            assert pic["content"] == "my \\*\\*cat\\*\\*"
            [att] = pic["attachments"]
            assert att["filename"] == "cat.png"
            assert fake.attachment_bytes(att["id"]) == image
            assert pdf["content"] == ""  # the body is the file name: no caption
            assert [a["filename"] for a in pdf["attachments"]] == ["report.pdf"]
            assert fake.attachment_bytes(pdf["attachments"][0]["id"]) == PDF
            uploads = [r for r in fake.requests_to("POST", "/webhooks/*")]
            assert uploads, "not sent through the webhook"
            # Each Discord message maps to its Matrix event.
            api = connector(discord_bridge).bridge
            key = portal_key(world.general.id)
            await eventually(lambda: _maps(api, key, event_id, pic["id"]))
            await eventually(lambda: _maps(api, key, doc_event, pdf["id"]))
            # The uploads' gateway echoes are not bridged back.
            await fake.send_message(world.general, world.bob, "after")
            await admin.wait_for_event(room_id, body_is("after"))
            events = await admin.messages(room_id)
            ghost_media = [
                e
                for e in events
                if e["sender"].startswith("@_discord_")
                and e["content"].get("msgtype") in ("m.image", "m.file")
            ]
            assert ghost_media == []
            bodies = [e["content"].get("body") for e in events]
            assert bodies.count("my **cat**") == 1


async def _maps(api: Any, key: Any, event_id: str, message_id: str) -> bool:
    return await api.find_remote_id(key, event_id) == message_id


async def test_a_file_over_discords_limit_becomes_a_link(
    small_uploads_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_bot(small_uploads_bridge, admin, world)
        room_id = await open_channel(world, admin, world.general, world.bob)
        carol = await relayed_user(bridge_env, uid, admin, room_id, "Carol C")
        async with carol:
            base = bridge_env.synapse.base_url
            big = PDF + b"1" * LIMIT
            mxc = await upload(base, carol.access_token, big, "big.pdf", "application/pdf")
            # Declared larger than the limit: not even downloaded.
            declared = await carol.send_message(
                room_id,
                {
                    "msgtype": "m.file",
                    "body": "see this",
                    "filename": "big.pdf",
                    "url": mxc,
                    "info": {"size": len(big)},
                },
            )
            # No size declared: found too large while reading it.
            await carol.send_message(room_id, {"msgtype": "m.file", "body": "big2.pdf", "url": mxc})

            def sent() -> list[dict[str, Any]]:
                return [m for m in fake.messages(world.general) if "📎" in m["content"]]

            await eventually(lambda: len(sent()) == 2, timeout=30)
            first, second = sent()
            assert first["webhook_id"] and not first["attachments"]
            assert first["content"].startswith("see this\n📎 big.pdf")
            assert second["content"].startswith("📎 big2.pdf")
            link = first["content"].rsplit(" ", 1)[-1]
            async with aiohttp.ClientSession() as http, http.get(link) as resp:
                assert resp.status == 200
                assert await resp.read() == big
            api = connector(small_uploads_bridge).bridge
            key = portal_key(world.general.id)
            await eventually(lambda: _maps(api, key, declared, first["id"]))
            # The file is not uploaded to Discord at all.
            assert not [m for m in fake.messages(world.general) if m.get("attachments")]


async def test_where_webhooks_are_forbidden_the_bot_uploads_with_a_label(
    discord_bridge, discord_world, bridge_env, uid
):
    world, fake = discord_world, discord_world.fake
    quiet = fake.add_channel(world.guild, "quiet")
    fake.set_overwrite(quiet, world.bot, deny=MANAGE_WEBHOOKS)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await admin.set_displayname("Ada")
        await login_bot(discord_bridge, admin, world)
        room_id = await open_channel(world, admin, quiet, world.bob)
        image = png(4, 4)
        mxc = await upload(
            bridge_env.synapse.base_url, admin.access_token, image, "a.png", "image/png"
        )
        event_id = await admin.send_message(
            room_id, {"msgtype": "m.image", "body": "a.png", "url": mxc}
        )

        def sent() -> list[dict[str, Any]]:
            return [m for m in fake.messages(quiet) if m.get("attachments")]

        await eventually(lambda: bool(sent()), timeout=30)
        [msg] = sent()
        assert not msg.get("webhook_id") and msg["author"]["id"] == world.bot.id
        assert msg["content"] == "**Ada** sent a file"
        assert fake.attachment_bytes(msg["attachments"][0]["id"]) == image
        api = connector(discord_bridge).bridge
        await eventually(lambda: _maps(api, portal_key(quiet.id), event_id, msg["id"]))


async def test_a_personal_login_uploads_as_itself_and_its_echo_is_not_bridged(
    dp_bridge, discord_world, bridge_env, uid
):
    w, fake = discord_world, discord_world.fake
    fake.echo_before_reply = True  # the gateway's echo comes before the REST reply
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        own = await login_user(dp_bridge, alice, fake, w.alice)
        dm = fake.add_dm(w.alice, w.bob)
        await fake.send_message(dm, w.bob, "send me the plan")
        key = portal_key(dm.id, own.login.id)
        room_id = await portal_room(dp_bridge, alice, key)
        await alice.wait_for_event(room_id, body_is("send me the plan"))
        mxc = await upload(
            bridge_env.synapse.base_url, alice.access_token, PDF, "plan.pdf", "application/pdf"
        )
        event_id = await alice.send_message(
            room_id, {"msgtype": "m.file", "body": "plan.pdf", "url": mxc}
        )

        def sent() -> list[dict[str, Any]]:
            return [m for m in fake.messages(dm) if m.get("attachments")]

        await eventually(lambda: bool(sent()), timeout=30)
        [msg] = sent()
        assert msg["author"]["id"] == w.alice.id and not msg.get("webhook_id")
        assert fake.attachment_bytes(msg["attachments"][0]["id"]) == PDF
        api = connector(dp_bridge).bridge
        await eventually(lambda: _maps(api, key, event_id, msg["id"]))
        await fake.send_message(dm, w.bob, "got it")
        await alice.wait_for_event(room_id, body_is("got it"))
        files = [
            e for e in await alice.messages(room_id) if e["content"].get("msgtype") == "m.file"
        ]
        assert [e["event_id"] for e in files] == [event_id]
