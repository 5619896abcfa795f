"""Shared fixtures: one real Synapse per test session, a fresh bridge and database per test.

The database engine comes from ``BRIDGEKIT_TEST_DB`` (``sqlite``, the default, or ``postgres``),
so the whole suite runs on both: ``.ci/run`` runs it twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridgekit.bridge import Bridge, discover_connectors
from bridgekit.config import Config
from bridgekit.registration import double_puppet_registration, generate
from bridgekit.testing.ports import free_port

SERVER_NAME = "bridgekit.test"
DB_ENGINE = os.environ.get("BRIDGEKIT_TEST_DB", "sqlite")
#: The pickle key of the bridges that encrypt (tests/test_e2e_encryption.py).
PICKLE_KEY = "bridgekit-test-pickle-key-0123456789"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, run only what the database engine can change; in a shard, only
    its part.

    ``scripts/test.sh`` runs the suite twice, once per engine. A test that never opens the
    bridge's database (no ``db_url`` among its fixtures, however indirectly) or whose module is
    marked ``engine_independent`` (formatting, TLS, media: what it checks cannot depend on the
    engine) already ran on SQLite, so the second pass leaves it out and CI stays short.
    """
    collected = Counter(_module(item) for item in items)
    if DB_ENGINE == "postgres" and os.environ.get("BRIDGEKIT_TEST_ALL") != "1":
        _engine_dependent_only(config, items)
    if shard := os.environ.get("BRIDGEKIT_TEST_SHARD"):
        _one_shard(config, items, shard, collected)


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _engine_dependent_only(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        uses_db = "db_url" in getattr(item, "fixturenames", ())
        independent = item.get_closest_marker("engine_independent") is not None
        (keep if uses_db and not independent else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


#: Seconds each test module took on the SQLite pass, for balancing shards. Written anew by a
#: run with ``BRIDGEKIT_TEST_RECORD_DURATIONS=1`` (a whole SQLite pass, one process).
DURATIONS = Path(__file__).with_name("durations.json")
_spent: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _spent[report.nodeid.split("::", 1)[0]] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.environ.get("BRIDGEKIT_TEST_RECORD_DURATIONS") == "1" and _spent:
        rounded = {module: round(seconds, 1) for module, seconds in sorted(_spent.items())}
        DURATIONS.write_text(json.dumps(rounded, indent=0) + "\n")


def _one_shard(
    config: pytest.Config, items: list[pytest.Item], shard: str, collected: Counter[str]
) -> None:
    """``BRIDGEKIT_TEST_SHARD=i/n``: only the i-th (1-based) of n parts of the modules, so that a
    pass can run as n processes side by side (scripts/test.sh). The tests mostly wait (on
    servers, timeouts, retries; a process uses about a quarter of a core), so n processes take
    little more than 1/n of the time. Whole modules, for their module-scoped servers; balanced
    by each module's measured time, in proportion to the part of it this pass runs (a module
    not measured yet: 3 s per end-to-end test)."""
    index, count = (int(x) for x in shard.split("/"))
    if not 1 <= index <= count:
        raise pytest.UsageError(f"BRIDGEKIT_TEST_SHARD={shard}: want i/n with 1 <= i <= n")
    measured: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    modules = Counter(_module(item) for item in items)

    def weight(module: str) -> float:
        if module in measured:
            return measured[module] * modules[module] / collected[module]
        return modules[module] * (3.0 if "e2e" in module else 0.05)

    loads = [0.0] * count
    mine: set[str] = set()
    for module in sorted(modules, key=lambda m: (-weight(m), m)):
        part = loads.index(min(loads))
        loads[part] += weight(module)
        if part == index - 1:
            mine.add(module)
    keep = [item for item in items if _module(item) in mine]
    dropped = [item for item in items if _module(item) not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class BridgeEnv:
    """What a test needs to run a bridge against the session's Synapse."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.as_port = free_port()
        self.as_token = secrets.token_hex(32)
        self.hs_token = secrets.token_hex(32)
        self.dp_token = secrets.token_hex(32)
        self.synapse: Any = None
        #: What Synapse knows as the appservice's URL (bridgekit/testing/appservice_gate.py).
        self.gate: Any = None

    def config_dict(self, db_url: str, **overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "homeserver": {
                "address": self.synapse.base_url if self.synapse else "http://127.0.0.1:1",
                "domain": SERVER_NAME,
            },
            "appservice": {
                "hostname": "127.0.0.1",
                "port": self.as_port,
                "address": f"http://127.0.0.1:{self.as_port}",
                "id": "bridgekit",
                "bot": {"username": "bridgekitbot", "displayname": "Bridge bot"},
                "as_token": self.as_token,
                "hs_token": self.hs_token,
            },
            "database": {"url": db_url},
            "permissions": {
                "*": "relay",
                SERVER_NAME: "user",
                f"@admin:{SERVER_NAME}": "admin",
                f"@stranger:{SERVER_NAME}": "relay",
            },
            "bridge": {"state_notice_delay": 1},
            "logging": {"level": "DEBUG"},
            "networks": {"fake": {"enabled": True}},
        }
        for dotted, value in overrides.items():
            node = base
            parts = dotted.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value
        return base


@pytest.fixture(scope="session")
def bridge_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    from bridgekit.testing.appservice_gate import AppserviceGate
    from bridgekit.testing.synapse import SynapseServer

    workdir = tmp_path_factory.mktemp("synapse")
    env = BridgeEnv(workdir)
    env.gate = AppserviceGate(env.as_port)
    env.gate.start()
    # The registration covers every installed connector's namespaces, so tests of any network
    # can run against this one Synapse (a test enables the networks it needs in its config).
    # Its URL is the gate's: between tests the gate answers Synapse, so that what Synapse still
    # had for one test's bridge is not pushed at a closed port (see the gate's docstring).
    config = Config.from_dict(
        env.config_dict(
            "sqlite:///unused.db",
            networks={name: {"enabled": True} for name in discover_connectors()},
            # The registration asks for what end-to-bridge encryption needs (MSC3202, MSC4190).
            encryption={"allow": True, "pickle_key": PICKLE_KEY},
            **{"appservice.address": env.gate.url},
        )
    )
    reg_path = workdir / "bridgekit-registration.yaml"
    generate(config, discover_connectors(), reg_path)
    # generate() keeps tokens that are already set: the config's tokens are the session's.
    dp_path = workdir / "doublepuppet.yaml"
    import yaml

    dp_path.write_text(yaml.safe_dump(double_puppet_registration(SERVER_NAME, env.dp_token)))
    server = SynapseServer(workdir, [reg_path, dp_path], server_name=SERVER_NAME)
    server.start()
    env.synapse = server
    yield env
    server.stop()
    env.gate.stop()


@pytest.fixture(autouse=True)
def _appservice_handover(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that uses the session's Synapse gets its appservice traffic while it runs, and
    leaves Synapse counting the appservice as up, with nothing held back for the next test."""
    if "bridge_env" not in request.fixturenames:
        yield
        return
    env: BridgeEnv = request.getfixturevalue("bridge_env")
    env.gate.in_test = True
    try:
        yield
    finally:
        env.gate.in_test = False
        if env.synapse.running:
            env.gate.run(env.synapse.recover_appservice("bridgekit", env.as_token))


@pytest.fixture
async def db_url(tmp_path: Path) -> AsyncIterator[str]:
    if DB_ENGINE == "postgres":
        from bridgekit.testing.postgres import create_database, drop_database, ensure_postgres

        dsn = await create_database(ensure_postgres())
        yield dsn
        await drop_database(dsn)
    else:
        yield f"sqlite:///{tmp_path}/bridgekit.db"


BridgeFactory = Callable[..., Awaitable[Bridge]]


@pytest.fixture
async def make_bridge(bridge_env: BridgeEnv, db_url: str) -> AsyncIterator[BridgeFactory]:
    """Start bridges on the session's appservice port; all are stopped at the end."""
    running: list[Bridge] = []

    async def factory(**overrides: Any) -> Bridge:
        config = Config.from_dict(bridge_env.config_dict(db_url, **overrides))
        assert config.validate(discover_connectors()) == []
        bridge = Bridge(config)
        bridge_env.gate.starting = True  # Synapse's requests wait for it, not fail
        try:
            await bridge.start()
        finally:
            bridge_env.gate.starting = False
        running.append(bridge)
        return bridge

    async def stop(bridge: Bridge) -> None:
        if bridge in running:
            running.remove(bridge)
            await bridge.stop()
            await bridge_env.gate.bridge_stopped()

    factory.stop = stop  # type: ignore[attr-defined]
    yield factory
    for bridge in running:
        await bridge.stop()
    await bridge_env.gate.bridge_stopped()


#: How long :func:`appservice_recovered` waits for Synapse to count the appservice as up.
RECOVERY_WAIT = 20.0


async def appservice_recovered(env: BridgeEnv) -> None:
    """After a restart, wait until Synapse counts the appservice as up again (the bridge's
    start-up ping makes its recoverer send what it held back, then it is up). For a test that
    sends an event right after restarting its bridge, once it has set up what the held events
    need (a fake network's chats are the new bridge's to add).

    An event sent while the recoverer finishes can be lost until the next failure (Synapse
    1.163, appservice/scheduler.py): its transaction is stored but not sent (the appservice
    is still down), and the recoverer had already found nothing left to send; it then marks
    the appservice up and nothing sends that transaction. A test's first message after a
    restart, on a loaded machine, waited its 30 s for nothing. A bridge in production meets
    the same race; it is Synapse's to fix."""
    synapse = env.synapse
    if synapse is None or not synapse.running or synapse.database_url:
        return  # appservice_state reads Synapse's SQLite database
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECOVERY_WAIT
    while await asyncio.to_thread(synapse.appservice_state, "bridgekit") == "down":
        if loop.time() > deadline:
            return  # what the test checks next says why (a ping that did not reach it)
        await asyncio.sleep(0.05)


@pytest.fixture
async def bridge(make_bridge: BridgeFactory) -> Bridge:
    return await make_bridge()


_counter = iter(range(1, 1_000_000))


def unique(prefix: str) -> str:
    """A name no other test in this session uses (Synapse is shared by all tests)."""
    return f"{prefix}{next(_counter)}{secrets.token_hex(3)}"


@pytest.fixture
def uid() -> Callable[[str], str]:
    return unique


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout: float = 15) -> None:
    """Wait until ``check()`` is true (polling), or fail the test."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
