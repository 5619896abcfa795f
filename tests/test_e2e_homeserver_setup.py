"""What an admin sets up for end-to-bridge encryption, against a Synapse of this module's own:
its homeserver.yaml is the one Synapse generated, with only what ``generate-registration
--homeserver-config`` added to it (the registration, the experimental features). Then what
the bridge says when the homeserver lacks something: no MSC4190 (it refuses to start), no
to-device pushes (it says so, and encrypted portals still work, through /sync), a crypto
database from another homeserver (it refuses to start)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

import bridgekit.crypto.service as crypto_service
from bridgekit.bridge import Bridge, discover_connectors
from bridgekit.cli import main
from bridgekit.config import Config
from bridgekit.crypto.backend import DeviceMismatch
from bridgekit.testing.synapse import SynapseServer
from tests.conftest import PICKLE_KEY, SERVER_NAME, BridgeEnv, eventually
from tests.helpers import fake, ghost
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, open_encrypted_portal

pytestmark = pytest.mark.engine_independent


@dataclass
class Setup:
    env: BridgeEnv
    synapse: SynapseServer
    config: Path
    registration: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("homeserver-setup")
    synapse = SynapseServer(workdir / "synapse", [], server_name=SERVER_NAME, admin_keys=True)
    synapse.write_config()  # Synapse's --generate-config, and the tests' listener
    env = BridgeEnv(workdir)  # a bridge config with its own tokens and appservice port
    env.synapse = synapse
    config = workdir / "config.yaml"
    data = env.config_dict(
        f"sqlite:///{workdir}/unused.db",
        encryption={"allow": True, "default": True, "pickle_key": "generate"},
    )
    config.write_text(yaml.safe_dump(data))
    registration = workdir / "registration" / "bridgekit.yaml"
    args = ["generate-registration", "-c", str(config), "-r", str(registration)]
    assert main([*args, "--homeserver-config", str(synapse.config_path)]) == 0
    synapse.start()
    yield Setup(env, synapse, config, registration)
    synapse.stop()


@pytest.fixture
async def start_bridge(setup: Setup, tmp_path: Path) -> AsyncIterator[Any]:
    running: list[Bridge] = []

    async def factory() -> Bridge:
        config = Config.load(setup.config)
        config.set("database.url", f"sqlite:///{tmp_path}/bridgekit.db")
        assert config.validate(discover_connectors()) == []
        bridge = Bridge(config)
        await bridge.start()
        running.append(bridge)
        return bridge

    yield factory
    for bridge in running:
        await bridge.stop()


async def test_synapse_runs_with_what_generate_registration_wrote(
    setup: Setup, start_bridge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synapse loaded the registration from the file generate-registration edited, and sends
    to-device messages to the bridge because of the feature it turned on there."""
    # The start-up probe's first message is often not pushed (the next one is): try sooner.
    monkeypatch.setattr(crypto_service, "PROBE_INTERVAL", 2.0)
    on_disk = yaml.safe_load(setup.synapse.config_path.read_text())
    assert on_disk["app_service_config_files"] == [str(setup.registration.resolve())]
    bridge = await start_bridge()
    assert bridge.encryption is not None
    await asyncio.wait_for(bridge.encryption.push_works.wait(), 60)


async def test_a_homeserver_without_msc4190_is_refused_at_start(
    setup: Setup, tmp_path: Path
) -> None:
    """A homeserver that cannot create an appservice's device (as Synapse before MSC4190:
    ``PUT /devices/{id}`` renames existing devices only, 404 for a new one) stops
    ``bridgekit run`` with the reason and what to do, instead of a bridge without keys.
    Synapse 1.163 creates such devices for every appservice (no setting turns it off), so a
    proxy in front of it answers that one request as an older Synapse did."""
    refused: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        path = request.rel_url.path
        if request.method == "PUT" and path.startswith("/_matrix/client/v3/devices/"):
            refused.append(path)
            unknown = {"errcode": "M_NOT_FOUND", "error": "Unknown device"}
            return web.json_response(unknown, status=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with aiohttp.ClientSession() as http:
            async with http.request(
                request.method,
                setup.synapse.base_url + str(request.rel_url),
                data=await request.read(),
                headers={**headers, "Content-Type": "application/json"},
            ) as resp:
                body = await resp.read()
                return web.Response(body=body, status=resp.status, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = Config.load(setup.config)
    config.set("homeserver.address", f"http://127.0.0.1:{port}")
    config.set("database.url", f"sqlite:///{tmp_path}/bridgekit.db")
    config.set("logging.level", "INFO")
    config.save(tmp_path / "config.yaml")
    log = tmp_path / "bridge.log"
    try:
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "bridgekit", "run", "-c", str(tmp_path / "config.yaml")),
                stdout=out,
                stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                await asyncio.wait_for(proc.wait(), 90)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    finally:
        await runner.cleanup()
    stderr = log.read_text()
    assert proc.returncode == 1, stderr[-3000:]
    assert refused, "the bridge never asked for its device"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("End-to-bridge encryption cannot start:"), stderr[-3000:]
    assert "did not create the bot's encryption device" in last
    assert "404 M_NOT_FOUND" in last and "MSC4190" in last
    assert "Traceback" not in stderr


async def test_without_to_device_pushes_the_admin_is_told_and_portals_work_through_sync(
    setup: Setup,
    start_bridge: Any,
    tmp_path: Path,
    uid: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The admin turned ``msc2409_to_device_messages_enabled`` off (or never on): the start-up
    probe finds no to-device message pushed and says so; room keys then come by /sync as the
    bot's device alone, and an encrypted portal works both ways."""
    hs = yaml.safe_load(setup.synapse.config_path.read_text())
    hs["experimental_features"]["msc2409_to_device_messages_enabled"] = False
    setup.synapse.config_path.write_text(yaml.safe_dump(hs))
    setup.synapse.restart()
    monkeypatch.setattr(crypto_service, "PROBE_TRIES", 3)
    monkeypatch.setattr(crypto_service, "PROBE_INTERVAL", 2.0)
    caplog.set_level(logging.INFO, logger="bridgekit.crypto")
    bridge = await start_bridge()
    assert bridge.encryption is not None
    alice, plain = await e2ee_user(setup.env, tmp_path, uid)
    async with plain, alice:
        client, chat, room_id = await open_encrypted_portal(
            bridge, alice, plain, uid, "hello, synced"
        )
        msg = await alice.wait_for_message(room_id, "hello, synced")
        assert msg["sender"] == ghost("bob") and msg["decrypted"] is True
        # Matrix -> remote: alice's room key reaches the bridge by /sync only.
        event_id = await alice.send_text(room_id, "from alice, key by sync")
        net = fake(bridge).network
        sent = await net.wait_for(
            lambda i: i.kind == "message" and i.data.event_id == event_id, timeout=60
        )
        assert sent.data.content.body == "from alice, key by sync" and sent.chat_id == chat
        await eventually(
            lambda: "did not push a to-device message" in caplog.text, timeout=3 * 2.0 + 30
        )
        assert "msc2409_to_device_messages_enabled: true" in caplog.text
        assert not bridge.encryption.push_works.is_set()


async def test_a_stale_crypto_database_against_a_fresh_homeserver_is_refused(
    setup: Setup, make_bridge: Any, db_url: str
) -> None:
    """The bridge's database comes from another homeserver (the tests' shared one): this
    module's Synapse has never seen the bot's device. A clear refusal, not a keyless device
    (the database has the keys, the homeserver nothing to encrypt to)."""
    bridge = await make_bridge(**ENCRYPTION)
    assert bridge.encryption is not None
    device = bridge.encryption.backend.device_id
    await make_bridge.stop(bridge)
    config = Config.load(setup.config)
    config.set("database.url", db_url)
    config.set("encryption.pickle_key", PICKLE_KEY)  # the database's
    fresh = Bridge(config)
    try:
        with pytest.raises(DeviceMismatch, match="has no such device") as refused:
            await fresh.start()
    finally:
        await fresh.stop()
    assert device in str(refused.value) and "delete the crypto_* tables" in str(refused.value)
