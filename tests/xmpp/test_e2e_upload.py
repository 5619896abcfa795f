"""Matrix media to XMPP through the server's XEP-0363 upload service, and the fallbacks.

XMPP clients show files inline when they are on an upload service; so when the server offers
one, the bridge downloads Matrix media (with its own token) and uploads it there. Without a
service, or for a file above the service's size limit, the message carries the bridge's own
signed media link, which works just as well for fetching.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import BridgeEnv
from tests.harness.prosody import Prosody, require_prosody
from tests.xmpp.conftest import xmpp_networks
from tests.xmpp.helpers import child
from tests.xmpp.test_e2e_muc import PNG, open_muc_portal

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

OOB = "jabber:x:oob"
LIMIT = 4096


@pytest.fixture(scope="module")
def upload_prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prosody]:
    """A Prosody with ``mod_http_file_share`` as upload.localhost, files up to LIMIT bytes."""
    require_prosody()
    server = Prosody(
        tmp_path_factory.mktemp("prosody-upload"), upload=True, upload_size_limit=LIMIT
    )
    server.start()
    yield server
    server.stop()


async def upload_to_matrix(http: aiohttp.ClientSession, env: BridgeEnv, user: Any, data: bytes):
    async with http.post(
        f"{env.synapse.base_url}/_matrix/media/v3/upload?filename=file.png",
        data=data,
        headers={"Authorization": f"Bearer {user.access_token}", "Content-Type": "image/png"},
    ) as resp:
        return (await resp.json())["content_uri"]


async def send_file(alice: Any, room_id: str, mxc: str, name: str, size: int) -> None:
    await alice.send_message(
        room_id,
        {
            "msgtype": "m.image",
            "body": name,
            "url": mxc,
            "info": {"mimetype": "image/png", "size": size},
        },
    )


async def received_link(bob: Any, name: str) -> str:
    """The URL of the file message named ``name`` Bob got; body and OOB URL agree."""
    got = await bob.wait_for(
        lambda m: (
            child(m, OOB, "x") is not None and child(m, OOB, "x").findtext(f"{{{OOB}}}desc") == name
        )
    )
    url = child(got, OOB, "x").findtext(f"{{{OOB}}}url")
    assert got["body"] == url
    return url


async def test_matrix_media_goes_to_the_upload_service(
    make_bridge, upload_prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bridge = await make_bridge(networks=xmpp_networks(upload_prosody))
    assert await bridge.connectors["xmpp"].component.wait_online(15)
    bob, alice, room, room_id, _ = await open_muc_portal(
        bridge, upload_prosody, bridge_env, xmpp_clients, uid
    )
    service = f"http://127.0.0.1:{upload_prosody.http_port}/"
    async with alice, aiohttp.ClientSession() as http:
        # An image within the service's limit: uploaded, the XMPP user gets the service's URL.
        mxc = await upload_to_matrix(http, bridge_env, alice, PNG)
        await send_file(alice, room_id, mxc, "dot.png", len(PNG))
        url = await received_link(bob, "dot.png")
        assert url.startswith(service)
        assert url.endswith("/dot.png")
        async with http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == PNG
        # Above the advertised max-file-size: the bridge's own signed link instead.
        big = PNG + bytes(LIMIT)
        mxc = await upload_to_matrix(http, bridge_env, alice, big)
        await send_file(alice, room_id, mxc, "big.png", len(big))
        url = await received_link(bob, "big.png")
        assert not url.startswith(service) and "/_bridgekit/media/" in url
        async with http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == big


async def test_without_an_upload_service_media_is_the_bridges_link(
    xmpp_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bob, alice, room, room_id, _ = await open_muc_portal(
        xmpp_bridge, prosody, bridge_env, xmpp_clients, uid
    )
    async with alice, aiohttp.ClientSession() as http:
        mxc = await upload_to_matrix(http, bridge_env, alice, PNG)
        await send_file(alice, room_id, mxc, "plain.png", len(PNG))
        url = await received_link(bob, "plain.png")
        assert "/_bridgekit/media/" in url
        async with http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == PNG
