"""Attachments in encrypted portals, end to end: a real Synapse, the fake network, and the
Matrix user's side a real E2EE client (matrix-nio) that encrypts its files itself (``file``
instead of ``url``) and decrypts the bridge's. The media repository holds only ciphertext."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from nio import BadEvent, UnknownBadEvent, UploadResponse
from nio.crypto.attachments import decrypt_attachment

from bridgekit.matrix.encrypted_media import KEYS
from tests.conftest import BridgeEnv, BridgeFactory
from tests.helpers import fake, ghost
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, open_encrypted_portal

pytestmark = pytest.mark.engine_independent  # media and keys, no database behaviour

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 15
THUMB = b"\x89PNG thumbnail " * 30


async def upload_encrypted(alice: Any, data: bytes, name: str) -> dict[str, Any]:
    """The file as an E2EE client uploads it: encrypted; its ``file`` object."""
    resp, keys = await alice.client.upload(
        lambda *_: data, content_type="image/png", filename=name, encrypt=True, filesize=len(data)
    )
    assert isinstance(resp, UploadResponse) and keys is not None
    return {"url": resp.content_uri, **keys}


def notice_with(alice: Any, room_id: str, text: str) -> Any:
    return lambda: next(
        (m for m in alice.messages.get(room_id, ()) if text in m["content"].get("body", "")),
        None,
    )


async def test_an_encrypted_file_from_matrix_reaches_the_network_decrypted(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    bridge = await make_bridge(**ENCRYPTION)
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        _, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
        net, api = fake(bridge).network, fake(bridge).bridge
        file = await upload_encrypted(alice, PNG, "cat.png")
        info = {"mimetype": "image/png", "size": len(PNG)}
        content = {"msgtype": "m.image", "body": "cat.png", "file": file, "info": info}
        event_id = await alice.send_event(room_id, "m.room.message", content)
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == event_id)
        mc = sent.data.content
        assert sent.chat_id == chat and mc.msgtype == "m.image" and mc.media_url == file["url"]
        # A connector that takes bytes gets the plaintext (the repository has ciphertext).
        assert await api.download_media(mc.media_url, 10**6) == (PNG, "image/png")
        # One that sends a link: the signed link serves the decrypted file, tokenless.
        link = await api.media_url(mc.media_url, "cat.png")
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as resp:
                assert resp.status == 200 and await resp.read() == PNG
                assert resp.headers["Content-Type"] == "image/png"
            # The keys are part of what is signed: changing them is a 404, not garbage.
            head, keys, sig, name = link.rsplit("/", 3)
            other = keys.split(".")
            other[0] = other[0][:-2] + ("AA" if not other[0].endswith("AA") else "BB")
            async with http.get(f"{head}/{'.'.join(other)}/{sig}/{name}") as resp:
                assert resp.status == 404

        # A file whose ciphertext does not match its hash (altered) is refused, with a notice.
        bad = await upload_encrypted(alice, PNG, "bad.png")
        other_hash = base64.b64encode(hashlib.sha256(b"something else").digest())
        bad["hashes"] = {"sha256": other_hash.decode().rstrip("=")}
        content = {"msgtype": "m.image", "body": "bad.png", "file": bad, "info": info}
        tampered = await alice.send_event(room_id, "m.room.message", content)
        notice = await alice.wait_for(notice_with(alice, room_id, "does not match its hash"), 45)
        assert notice["sender"] == bridge.bot_mxid and notice["decrypted"] is True
        assert KEYS.get(bad["url"]) is None  # its wrong keys are not used for that URI later
        # A malformed ``file`` (its URL not an mxc) is refused too, not bridged as a bare name.
        content = {"msgtype": "m.file", "body": "odd.bin", "file": {**file, "url": "https://x/y"}}
        malformed = await alice.send_event(room_id, "m.room.message", content)
        await alice.wait_for(notice_with(alice, room_id, "encrypted file is malformed"), 45)
        # One without its key does not even parse once decrypted: refused at once, and the
        # room's later messages are not held up behind it.
        broken = {k: v for k, v in file.items() if k != "key"}
        content = {"msgtype": "m.file", "body": "broken.bin", "file": broken}
        keyless = await alice.send_event(room_id, "m.room.message", content)
        await alice.wait_for(notice_with(alice, room_id, "could not be decrypted"), 45)
        after = await alice.send_text(room_id, "after the broken file")
        await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == after)
        refused = {tampered, malformed, keyless}
        assert not [i for i in net.sent if i.kind == "message" and i.data.event_id in refused]


async def test_a_network_file_arrives_as_an_encrypted_attachment(
    make_bridge: BridgeFactory, bridge_env: BridgeEnv, tmp_path: Path, uid: Any
) -> None:
    async def serve(request: web.Request) -> web.Response:
        body = PNG if request.path == "/cat.png" else THUMB
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", serve)
    app.router.add_get("/thumb.png", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        media = {"media.allow": [f"127.0.0.1:{port}"], "media.max_size": 5000}
        bridge = await make_bridge(**ENCRYPTION, **media)
        alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
        async with plain, alice:
            bad: list[dict[str, Any]] = []

            async def on_bad(room: Any, event: Any) -> None:
                bad.append(event.source)
                await alice._notify()

            alice.client.add_event_callback(on_bad, (BadEvent, UnknownBadEvent))
            client, chat, room_id = await open_encrypted_portal(bridge, alice, plain, uid, "hi")
            info = {"mimetype": "image/png", "thumbnail_url": f"http://127.0.0.1:{port}/thumb.png"}
            url = f"http://127.0.0.1:{port}/cat.png"
            await client.remote_message(
                chat, "bob", "cat.png", msgtype="m.image", media_url=url, media_info=info
            )
            # A connector that uploaded the file itself (an mxc): sent encrypted all the same.
            mxc = await fake(bridge).bridge.upload_media(THUMB, "image/png", "dog.png")
            await client.remote_message(chat, "bob", "dog.png", msgtype="m.image", media_url=mxc)
            # One beyond media.max_size, too large to copy encrypted: sent as it was uploaded.
            big = await fake(bridge).bridge.upload_media(PNG * 2, "image/png", "big.png")
            await client.remote_message(chat, "bob", "big.png", msgtype="m.image", media_url=big)

            async def decrypted(file: dict[str, Any]) -> bytes:
                resp = await alice.client.download(file["url"])
                assert resp.body not in (PNG, THUMB)  # the repository holds ciphertext
                return decrypt_attachment(
                    resp.body, file["key"]["k"], file["hashes"]["sha256"], file["iv"]
                )

            msg = await alice.wait_for_message(room_id, "cat.png", 45)
            content = msg["content"]
            assert msg["sender"] == ghost("bob") and msg["decrypted"] is True
            assert "url" not in content and content["file"]["v"] == "v2"
            assert await decrypted(content["file"]) == PNG
            thumb = content["info"]
            assert "thumbnail_url" not in thumb and thumb["mimetype"] == "image/png"
            assert await decrypted(thumb["thumbnail_file"]) == THUMB
            dog = (await alice.wait_for_message(room_id, "dog.png", 45))["content"]
            assert "url" not in dog and await decrypted(dog["file"]) == THUMB
            # (nio holds an unencrypted file in an encrypted room for a bad event: Element
            # and the spec accept it.)
            large = await alice.wait_for(lambda: next((e for e in bad if "big" in str(e)), 0), 45)
            assert large["content"]["url"] == big and "file" not in large["content"]
    finally:
        await runner.cleanup()
