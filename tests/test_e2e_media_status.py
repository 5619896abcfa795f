"""Signed media links that work for remote users, and the status/metrics endpoints."""

from __future__ import annotations

import aiohttp
import pytest

from bridgekit.bridge import Bridge
from bridgekit.metrics import StatusServer
from bridgekit.testing.ports import free_port
from tests.conftest import BridgeEnv
from tests.helpers import login

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def upload(base_url: str, token: str, data: bytes, name: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base_url}/_matrix/media/v3/upload",
            params={"filename": name},
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["content_uri"]


async def test_media_link_works_without_a_token(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        payload = b"\x89PNG fake image bytes " * 100
        mxc = await upload(bridge_env.synapse.base_url, alice.access_token, payload, "cat.png")
        link = await bridge.media_url(mxc, "cat picture.png")
        assert link.startswith(f"http://127.0.0.1:{bridge_env.as_port}/_bridgekit/media/")
        assert link.endswith("/cat_picture.png")
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as resp:  # no token: a remote user's browser
                assert resp.status == 200
                assert await resp.read() == payload
                assert resp.headers["Content-Type"] == "image/png"
            tampered = (
                link.replace("/cat_picture.png", "").rsplit("/", 1)[0] + "/" + "0" * 32 + "/x"
            )
            async with http.get(tampered) as resp:
                assert resp.status == 404
            # A valid signature for media that does not exist is still a 404, not an error.
            fake_mxc = "mxc://bridgekit.test/doesnotexist"
            async with http.get(await bridge.media_url(fake_mxc)) as resp:
                assert resp.status == 404


async def test_status_and_metrics_endpoints(bridge: Bridge, bridge_env: BridgeEnv, uid):
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        port = free_port()
        server = StatusServer(
            bridge.metrics,
            bridge.status,
            lambda: {"inbox": bridge.inbox.pending, "outbox": bridge.outbox.pending},
        )
        await server.start("127.0.0.1", port)
        try:
            await alice.create_room(invite=[bridge.bot_mxid], is_direct=True)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/status") as resp:
                    status = await resp.json()
                assert status["logins"][client.login.id]["state"] == "CONNECTED"
                assert status["logins"][client.login.id]["user"] == alice.user_id
                from tests.conftest import eventually

                async def counted() -> bool:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        text = await resp.text()
                    return (
                        'bridgekit_events_in_total{source="matrix"}' in text
                        and 'bridgekit_handling_seconds_count{source="matrix"}' in text
                    )

                await eventually(counted)
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
                for name in (
                    "bridgekit_transaction_ack_seconds_bucket",
                    "bridgekit_queue_depth",
                    "bridgekit_handling_seconds_bucket",
                ):
                    assert name in text
        finally:
            await server.stop()


async def test_media_links_on_their_own_listener(make_bridge, bridge_env: BridgeEnv, uid):
    """With media.port the signed links are served there and nowhere else, and that listener
    serves nothing of the appservice API: exposing media does not expose the bridge."""
    media_port = free_port()
    bridge = await make_bridge(media={"hostname": "127.0.0.1", "port": media_port})
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        payload = b"\x89PNG on its own port " * 50
        mxc = await upload(bridge_env.synapse.base_url, alice.access_token, payload, "cat.png")
        link = await bridge.media_url(mxc, "cat.png")
        media_base = f"http://127.0.0.1:{media_port}"
        as_base = f"http://127.0.0.1:{bridge_env.as_port}"
        assert link.startswith(f"{media_base}/_bridgekit/media/")
        path = link[len(media_base) :]
        auth = {"Authorization": f"Bearer {bridge_env.hs_token}"}
        txn = {"events": []}
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as resp:
                assert resp.status == 200 and await resp.read() == payload
            async with http.get(as_base + path) as resp:  # not on the appservice port
                assert resp.status == 404
            # The appservice API, with the right token, is not on the media listener...
            for method, api_path in (
                ("PUT", f"/_matrix/app/v1/transactions/media{uid('t')}"),
                ("GET", f"/_matrix/app/v1/users/@_fake_x:{bridge.domain}"),
                ("POST", "/_matrix/app/v1/ping"),
            ):
                async with http.request(
                    method, media_base + api_path, headers=auth, json=txn
                ) as resp:
                    assert resp.status == 404, (method, api_path, resp.status)
            # ...and still on the appservice port.
            async with http.put(
                f"{as_base}/_matrix/app/v1/transactions/media{uid('t')}", headers=auth, json=txn
            ) as resp:
                assert resp.status == 200
