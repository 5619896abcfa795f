"""Files both ways between a Slack channel and its portal room: fake Slack (real slack-sdk on
the bridge's side) <-> bridge <-> real Synapse.

Slack -> Matrix: one message with text and files is one remote message in parts, each file
downloaded with the token from an allowed host and uploaded to the homeserver; what cannot be
copied (too large, a hostile link, a lying name or type) is a line saying so. Matrix -> Slack:
files upload v2, the message's ts mapped to the Matrix event, the echo not bridged back, and a
file over the limit refused with a notice."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridgekit.bridge import Bridge
from bridges.slack.ids import portal_key
from tests.conftest import eventually
from tests.helpers import notice_says
from tests.slack.conftest import (
    body_is,
    connector,
    login_app,
    login_user,
    open_channel,
    slack_networks,
)

pytestmark = pytest.mark.engine_independent

LIMIT = 4000


def png(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` (grey)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 200
PDF = b"%PDF-1.4\n" + b"0" * 300


async def media_bytes(base_url: str, token: str, mxc: str) -> bytes:
    server, _, media_id = mxc[len("mxc://") :].partition("/")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base_url}/_matrix/client/v1/media/download/{server}/{media_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 200
            return await resp.read()


async def upload(base_url: str, token: str, data: bytes, name: str, mime: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/_matrix/media/v3/upload",
            params={"filename": name},
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": mime},
        ) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["content_uri"]


def media_event(name: str):
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == name


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """Another web server on loopback (allowed by media.allow, not a Slack file host): it
    records whatever reaches it."""
    hits: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(dict(request.headers))
        return web.Response(body=png(2, 2), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, hits
    await runner.cleanup()


@pytest.fixture
async def small_files_bridge(make_bridge: Any, slack_fake: Any, elsewhere: Any) -> Bridge:
    return await make_bridge(
        networks=slack_networks(slack_fake, max_file_size=LIMIT),
        media={"allow": [f"127.0.0.1:{slack_fake.port}", f"127.0.0.1:{elsewhere[0]}"]},
    )


async def test_text_and_files_reach_matrix_as_one_message_in_parts(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, w = slack_world.fake, slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        image = png(64, 48)
        cat = fake.add_file(w.team.id, w.bob.id, "cat.png", image)
        report = fake.add_file(w.team.id, w.bob.id, "report.pdf", PDF)
        clip = fake.add_file(w.team.id, w.bob.id, "clip.mp4", MP4, "video/mp4")
        msg = fake.post_user_message(
            w.general.id, w.bob.id, "look *here*", files=[cat, report, clip]
        )

        text = await admin.wait_for_event(room_id, body_is("look *here*"))
        pic = await admin.wait_for_event(room_id, media_event("cat.png"))
        doc = await admin.wait_for_event(room_id, media_event("report.pdf"))
        vid = await admin.wait_for_event(room_id, media_event("clip.mp4"))
        assert {e["sender"] for e in (text, pic, doc, vid)} == {w.ghost(w.bob)}
        assert pic["content"]["msgtype"] == "m.image"
        assert pic["content"]["info"] == {
            "mimetype": "image/png",
            "size": len(image),
            "w": 64,
            "h": 48,
        }
        assert doc["content"]["msgtype"] == "m.file"
        assert doc["content"]["info"] == {"mimetype": "application/pdf", "size": len(PDF)}
        assert vid["content"]["msgtype"] == "m.video"
        assert vid["content"]["info"]["mimetype"] == "video/mp4"
        base, token = bridge_env.synapse.base_url, admin.access_token
        assert await media_bytes(base, token, pic["content"]["url"]) == image
        assert await media_bytes(base, token, doc["content"]["url"]) == PDF
        # Downloaded with the app's token, from the fake's file host.
        downloads = [r for r in fake.requests if r.kind == "download" and r.status == 200]
        assert len(downloads) == 3 and {r.token for r in downloads} == {w.bot_token}
        # One message: text first, then one part per file, all under the message's ts.
        key = portal_key(w.team.id, w.general.id)
        rows = await slack_bridge.store.message_parts("slack", key, msg.ts)
        parts = {row.part: row.event_id for row in rows}
        assert parts == {
            "": text["event_id"],
            f"file:{cat.id}": pic["event_id"],
            f"file:{report.id}": doc["event_id"],
            f"file:{clip.id}": vid["event_id"],
        }

        # Files without text: the first file is the message's first part.
        solo = fake.add_file(w.team.id, w.bob.id, "solo.png", image)
        msg2 = fake.post_user_message(w.general.id, w.bob.id, "", files=[solo])
        only = await admin.wait_for_event(room_id, media_event("solo.png"))
        assert only["content"]["msgtype"] == "m.image"
        rows = await slack_bridge.store.message_parts("slack", key, msg2.ts)
        assert [(r.part, r.event_id) for r in rows] == [("", only["event_id"])]


async def test_a_slow_download_does_not_let_the_next_message_overtake(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, w = slack_world.fake, slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        fake.delay("download", 2.0)
        slow = fake.add_file(w.team.id, w.bob.id, "slow.pdf", PDF)
        fake.post_user_message(w.general.id, w.bob.id, "", files=[slow])
        fake.post_user_message(w.general.id, w.alice.id, "next")
        await admin.wait_for_event(room_id, body_is("next"), timeout=30)
        bodies = [
            e["content"].get("body")
            for e in await admin.messages(room_id)
            if e["type"] == "m.room.message"
        ]
        assert bodies.index("slow.pdf") < bodies.index("next")


async def test_oversized_hostile_and_lying_files_become_lines_not_downloads(
    small_files_bridge, slack_world, bridge_env, uid, elsewhere
):
    fake, w = slack_world.fake, slack_world
    other_port, other_hits = elsewhere
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(small_files_bridge, admin, w)
        room_id = await open_channel(small_files_bridge, w, admin, w.general, w.bob)
        big = fake.add_file(w.team.id, w.bob.id, "big.bin", b"x" * (LIMIT * 3))
        # Says it is small, is not: the download stops at the cap.
        liar = fake.add_file(w.team.id, w.bob.id, "liar.bin", b"y" * (LIMIT * 50))
        liar.extra["size"] = 10
        # Its link points to another host, which must never see the token (nor any request).
        evil = fake.add_file(w.team.id, w.bob.id, "evil.png", png(2, 2))
        evil.extra["url_private"] = evil.extra["url_private_download"] = (
            f"http://127.0.0.1:{other_port}/{evil.id}/evil.png"
        )
        # A name with path separators, control characters and markup; HTML called a PNG.
        sneaky = fake.add_file(
            w.team.id,
            w.bob.id,
            "..\\../../etc/pass\x00wd\u202e<img src=x onerror=alert(1)>.png",
            b"<html><script>alert(1)</script></html>",
            "image/png",
        )
        # Another workspace's file: Slack sends our token to its sign-in page, not followed.
        other = fake.add_team("Other", "other")
        theirs = fake.add_file(other.id, w.bob.id, "theirs.txt", b"not yours")
        # A link that answers with Slack's sign-in page (200, HTML) instead of the file.
        page = fake.add_file(w.team.id, w.bob.id, "page.pdf", PDF)
        page.extra["url_private"] = page.extra["url_private_download"] = f"{fake.url}/signin"
        fake.post_user_message(
            w.general.id, w.bob.id, "files", files=[big, liar, evil, sneaky, theirs, page]
        )

        await admin.wait_for_event(room_id, body_is("files"))
        too_big = await admin.wait_for_event(room_id, notice_says("big.bin: too large"))
        assert "12 KiB" in too_big["content"]["body"] or "11.7 KiB" in too_big["content"]["body"]
        assert f"/files/{w.bob.id}/{big.id}/big.bin" in too_big["content"]["body"]  # the permalink
        assert too_big["content"]["msgtype"] == "m.notice" and "url" not in too_big["content"]
        lied = await admin.wait_for_event(room_id, notice_says("liar.bin: too large"))
        assert "url" not in lied["content"]
        refused = await admin.wait_for_event(room_id, notice_says("evil.png: its link"))
        assert "not on a Slack file host" in refused["content"]["body"]
        odd = await admin.wait_for_event(
            room_id, lambda e: e.get("content", {}).get("msgtype") == "m.file"
        )
        name = odd["content"]["body"]
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert "\u202e" not in name and "formatted_body" not in odd["content"]
        assert odd["content"]["info"]["mimetype"] == "application/octet-stream"
        signin = await admin.wait_for_event(room_id, notice_says("theirs.txt: could not be"))
        assert "redirected" in signin["content"]["body"]
        html = await admin.wait_for_event(room_id, notice_says("page.pdf: Slack did not hand"))
        assert "url" not in html["content"]
        assert other_hits == []
        downloads = [r for r in fake.requests if r.kind == "download"]
        assert big.id not in " ".join(r.method for r in downloads)  # never fetched


async def test_matrix_file_reaches_slack_mapped_and_not_echoed(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, w = slack_world.fake, slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        image = png(20, 10)
        base = bridge_env.synapse.base_url
        mxc = await upload(base, admin.access_token, image, "sun.png", "image/png")
        content = {
            "msgtype": "m.image",
            "body": "sun.png",
            "url": mxc,
            "info": {"mimetype": "image/png", "size": len(image), "w": 20, "h": 10},
        }
        event_id = (
            await admin.request("PUT", f"/rooms/{room_id}/send/m.room.message/t1", content)
        )["event_id"]

        def shares() -> list[Any]:
            return [m for m in fake.messages[w.general.id] if m.subtype == "file_share"]

        await eventually(lambda: shares(), timeout=30)
        shared = shares()
        f = fake.files[shared[0].files[0]]
        assert f.data == image and f.name == "sun.png"
        assert fake.calls("files.completeUploadExternal")[0].params["channel_id"] == w.general.id
        key = portal_key(w.team.id, w.general.id)
        conn = connector(slack_bridge)
        await eventually(lambda: conn.bridge.find_remote_id(key, event_id), timeout=30)
        assert await conn.bridge.find_remote_id(key, event_id) == shared[0].ts

        # A relayed sender's file with a caption says who sent it.
        # Named before joining: the join event carries the name the relay shows (a rename
        # after joining may reach the bridge after the file does).
        await carol.set_displayname("Carol <C>")
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        mxc2 = await upload(base, carol.access_token, PDF, "plan.pdf", "application/pdf")
        await carol.request(
            "PUT",
            f"/rooms/{room_id}/send/m.room.message/t2",
            {
                "msgtype": "m.file",
                "body": "the plan",
                "filename": "plan.pdf",
                "url": mxc2,
                "info": {"mimetype": "application/pdf", "size": len(PDF)},
            },
        )
        await eventually(lambda: len(shares()) == 2, timeout=30)
        shared = shares()[1:]
        assert shared[0].text.startswith("*Carol &lt;C&gt;")
        assert shared[0].text.endswith(": the plan")
        assert fake.files[shared[0].files[0]].data == PDF

        # A file sent in a Matrix thread goes to the Slack thread.
        root = fake.post_user_message(w.general.id, w.bob.id, "thread root")
        root_evt = await admin.wait_for_event(room_id, body_is("thread root"))
        await admin.request(
            "PUT",
            f"/rooms/{room_id}/send/m.room.message/t3",
            {
                "msgtype": "m.image",
                "body": "reply.png",
                "url": mxc,
                "info": {"mimetype": "image/png", "size": len(image)},
                "m.relates_to": {"rel_type": "m.thread", "event_id": root_evt["event_id"]},
            },
        )
        await eventually(lambda: len(shares()) == 3, timeout=30)
        assert shares()[2].thread_ts == root.ts
        assert fake.calls("files.completeUploadExternal")[2].params["thread_ts"] == root.ts

        # The echoes over Socket Mode are not bridged back.
        fake.post_user_message(w.general.id, w.bob.id, "after")
        await admin.wait_for_event(room_id, body_is("after"))
        events = [e for e in await admin.messages(room_id) if e["type"] == "m.room.message"]
        assert [e["content"]["body"] for e in events].count("sun.png") == 1
        assert [e["content"]["body"] for e in events].count("the plan") == 1
        assert [e["content"]["body"] for e in events].count("reply.png") == 1


async def test_matrix_file_over_the_limit_is_refused_with_a_notice(
    small_files_bridge, slack_world, bridge_env, uid
):
    fake, w = slack_world.fake, slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(small_files_bridge, admin, w)
        room_id = await open_channel(small_files_bridge, w, admin, w.general, w.bob)
        data = b"z" * (LIMIT * 5)
        mxc = await upload(
            bridge_env.synapse.base_url,
            admin.access_token,
            data,
            "a.bin",
            "application/octet-stream",
        )
        # The size it declares is a lie: the download itself stops at the limit.
        await admin.request(
            "PUT",
            f"/rooms/{room_id}/send/m.room.message/big1",
            {"msgtype": "m.file", "body": "a.bin", "url": mxc, "info": {"size": 10}},
        )
        notice = await admin.wait_for_event(room_id, notice_says("larger than the bridge's limit"))
        assert "not delivered" in notice["content"]["body"]
        assert fake.calls("files.getUploadURLExternal") == []
        assert not any(m.subtype == "file_share" for m in fake.messages[w.general.id])


async def test_a_personal_login_uploads_as_its_slack_user_without_echo(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, w = slack_world.fake, slack_world
    admin = await bridge_env.synapse.register_user(uid("admin"))
    dave = await bridge_env.synapse.register_user(uid("dave"))
    async with admin, dave:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        await login_user(slack_bridge, dave, w, w.alice)
        await admin.invite(room_id, dave.user_id)
        await dave.join(room_id)
        mxc = await upload(
            bridge_env.synapse.base_url, dave.access_token, PDF, "mine.pdf", "application/pdf"
        )
        event_id = (
            await dave.request(
                "PUT",
                f"/rooms/{room_id}/send/m.room.message/d1",
                {"msgtype": "m.file", "body": "mine.pdf", "url": mxc, "info": {"size": len(PDF)}},
            )
        )["event_id"]

        def shares() -> list[Any]:
            return [m for m in fake.messages[w.general.id] if m.subtype == "file_share"]

        await eventually(lambda: shares(), timeout=30)
        shared = shares()[0]
        assert shared.user == w.alice.id and shared.text == ""  # as alice, no relay line
        assert fake.files[shared.files[0]].user == w.alice.id
        upload_calls = fake.calls("files.getUploadURLExternal")
        assert upload_calls[0].token == fake.user_token(w.alice.id)
        key = portal_key(w.team.id, w.general.id)
        conn = connector(slack_bridge)
        await eventually(lambda: conn.bridge.find_remote_id(key, event_id), timeout=30)
        assert await conn.bridge.find_remote_id(key, event_id) == shared.ts
        fake.post_user_message(w.general.id, w.bob.id, "after")
        await admin.wait_for_event(room_id, body_is("after"))
        events = [e for e in await admin.messages(room_id) if e["type"] == "m.room.message"]
        assert [e["content"]["body"] for e in events].count("mine.pdf") == 1
