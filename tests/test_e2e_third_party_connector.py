"""A connector is just a package: a third party's connector, installed with pip, is found and run.

``tests/thirdparty/acme-connector`` is a separate package (its own ``pyproject.toml``, its only
tie to bridgekit an entry point in ``bridgekit.connectors``). The test installs it with pip
into a directory of its own, outside the repository, and then does what an admin does:
``bridgekit check-config`` (the connector validates its own section), ``bridgekit
generate-registration`` (its ghost namespace is registered), a Synapse with that registration,
``bridgekit run``, and a Matrix user who logs in through the management room and chats with the
network's echo user in the portal the runtime made for it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bridgekit.testing.matrix_client import MatrixTestClient
from bridgekit.testing.synapse import SynapseServer
from tests.conftest import SERVER_NAME, BridgeEnv
from tests.helpers import BridgeProcess, Conversation

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tests" / "thirdparty" / "acme-connector"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def installed(tmp_path: Path) -> dict[str, str]:
    """The acme package installed (a real build and install, its dist-info and entry point
    included) into a site directory; the environment in which it is importable."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp_path / "site"
    done = run(
        dict(os.environ),
        *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"),
        *("--no-build-isolation", "--target", str(site), str(src)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "acme_bridge" / "__init__.py").exists()
    assert list(site.glob("acme_bridge-*.dist-info/entry_points.txt"))
    path = os.pathsep.join([str(site), str(REPO)])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


async def test_an_installed_third_party_connector_runs_end_to_end(
    installed: dict[str, str], tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridgekit = (sys.executable, "-m", "bridgekit")
    env = BridgeEnv(tmp_path / "hs")
    env.workdir.mkdir()
    cfg = tmp_path / "config.yaml"
    settings = env.config_dict(db_url, networks={"acme": {"greeting": 5}})
    settings["homeserver"]["address"] = "http://127.0.0.1:1"  # filled in once Synapse runs
    cfg.write_text(yaml.safe_dump(settings))

    # The connector checks its own section, and its problem is reported like the runtime's.
    checked = run(installed, *bridgekit, "check-config", "-c", str(cfg))
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "networks.acme.greeting" in checked.stdout + checked.stderr
    assert "must be a string" in checked.stdout + checked.stderr
    # Not installed means not found: the same command without the package on the path.
    bare = run({**installed, "PYTHONPATH": str(REPO)}, *bridgekit, "check-config", "-c", str(cfg))
    assert bare.returncode != 0 and "acme" in bare.stdout + bare.stderr

    settings["networks"]["acme"]["greeting"] = "welcome to acme"
    cfg.write_text(yaml.safe_dump(settings))
    registration = env.workdir / "registration.yaml"
    made = run(
        installed, *bridgekit, "generate-registration", "-c", str(cfg), "-r", str(registration)
    )
    assert made.returncode == 0, made.stdout + made.stderr
    namespaces = yaml.safe_load(registration.read_text())["namespaces"]["users"]
    assert any("_acme_" in ns["regex"] for ns in namespaces), namespaces

    synapse = SynapseServer(env.workdir, [registration], server_name=SERVER_NAME)
    await asyncio.to_thread(synapse.start)
    process = BridgeProcess(cfg, tmp_path / "bridge.log")
    try:
        settings = yaml.safe_load(cfg.read_text())  # with the tokens generate wrote
        settings["homeserver"]["address"] = synapse.base_url
        cfg.write_text(yaml.safe_dump(settings))
        monkeypatch.setenv("PYTHONPATH", installed["PYTHONPATH"])
        process.start()
        await chat_through_the_bridge(synapse, process)
    finally:
        process.kill_9()
        await asyncio.to_thread(synapse.stop)


async def chat_through_the_bridge(synapse: SynapseServer, process: BridgeProcess) -> None:
    bot = f"@bridgekitbot:{SERVER_NAME}"
    alice: MatrixTestClient = await synapse.register_user("alice")
    async with alice:
        management = await alice.create_room(invite=[bot], is_direct=True)
        conv = Conversation(alice, management, bot)
        try:
            assert "management room" in await conv.next_notice(timeout=60)
        except TimeoutError:
            raise AssertionError(process.log_tail()) from None
        assert "token" in await conv.say("login acme")
        assert "starts with acme-" in await conv.say("hunter2")  # the connector's own words
        assert "token" in await conv.say("login acme")
        assert "Logged in" in await conv.say("acme-123")

        room_id, _ = await alice.wait_for_invite(timeout=30)
        await alice.join(room_id)
        echo = f"@_acme_echo:{SERVER_NAME}"
        greeting = await alice.wait_for_event(
            room_id, lambda e: e.get("content", {}).get("body") == "welcome to acme"
        )
        assert greeting["sender"] == echo
        assert (await alice.get_state(room_id, "m.room.name"))["name"] == "Acme lobby"
        assert (await alice.get_profile(echo)).get("displayname") == "Echo"

        ping = await alice.send_text(room_id, "ping")
        answer = await alice.wait_for_event(
            room_id, lambda e: e.get("content", {}).get("body", "").endswith("echo: ping")
        )
        assert answer["sender"] == echo
        # The network's reply names its own id for "ping"; the runtime maps it to the event.
        reply_to = answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
        assert reply_to == ping
