"""The homeserver restarts while messages flow both ways (Matrix <-> a real InspIRCd).

Each test has a Synapse of its own (the session's is shared by every test). Synapse on SQLite
numbers appservice transactions again after a restart, so the ids of the first transactions
afterwards are ids the bridge has already seen: their new events must still be bridged. On
PostgreSQL the ids come from a sequence; the restart must lose nothing there either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bridgekit.bridge import Bridge, discover_connectors
from bridgekit.config import Config
from bridgekit.registration import generate
from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import DB_ENGINE, SERVER_NAME, BridgeEnv, eventually
from tests.harness.inspircd import InspIRCd
from tests.irc.e2e import ghost, irc_networks, irc_user, open_channel


@pytest.fixture(params=["sqlite", "postgres"], ids=["synapse-sqlite", "synapse-postgres"])
async def own_homeserver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BridgeEnv]:
    """A Synapse of this test's own (it is restarted), on SQLite or PostgreSQL."""
    database_url = None
    if request.param == "postgres":
        if DB_ENGINE != "postgres":
            # About the homeserver's database, not the bridge's: one run of the suite is enough.
            pytest.skip("Synapse on PostgreSQL runs in the BRIDGEKIT_TEST_DB=postgres run")
        pytest.importorskip("psycopg2", reason="Synapse needs psycopg2 for PostgreSQL")
        from bridgekit.testing.postgres import create_database, ensure_postgres

        database_url = await create_database(ensure_postgres())
    from bridgekit.testing.synapse import SynapseServer

    env = BridgeEnv(tmp_path / "synapse")
    env.workdir.mkdir()
    config = Config.from_dict(env.config_dict("sqlite:///unused.db", networks={"irc": {}}))
    registration = env.workdir / "registration.yaml"
    generate(config, discover_connectors(), registration)
    server = SynapseServer(
        env.workdir, [registration], server_name=SERVER_NAME, database_url=database_url
    )
    await asyncio.to_thread(server.start)
    env.synapse = server
    try:
        yield env
    finally:
        await asyncio.to_thread(server.stop)
        if database_url is not None:
            from bridgekit.testing.postgres import drop_database

            await drop_database(database_url)


async def send(alice: MatrixTestClient, room_id: str, body: str) -> None:
    """Send, once more if the pooled connection died with the homeserver (it never got
    there)."""
    try:
        await alice.send_text(room_id, body)
    except aiohttp.ClientConnectionError:
        await asyncio.sleep(0.2)
        await alice.send_text(room_id, body)


async def test_a_homeserver_restart_loses_and_doubles_nothing_either_way(
    own_homeserver: BridgeEnv, ircd: InspIRCd, db_url: str, uid, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="bridgekit")
    env = own_homeserver
    synapse = env.synapse
    bridge = Bridge(Config.from_dict(env.config_dict(db_url, networks=irc_networks(ircd))))
    await bridge.start()
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    alice = await synapse.register_user(uid("alice"))
    try:
        async with alice:
            room_id, puppet = await open_channel(alice, channel, bob, timeout=60)
            assert bob.nick
            bob_ghost = ghost(bob.nick)
            await alice.wait_for_event(room_id, lambda e: True)  # alice's sync runs from now

            def on_irc(prefix: str) -> list[str]:
                return [
                    m.trailing or ""
                    for m in bob.history
                    if m.command == "PRIVMSG"
                    and m.nick == puppet
                    and (m.trailing or "").startswith(prefix)
                ]

            def on_matrix(prefix: str) -> list[str]:
                """bob's lines in the room (lines sent together may share an event)."""
                return [
                    line
                    for e in alice.history(room_id)
                    if e.get("type") == "m.room.message" and e.get("sender") == bob_ghost
                    for line in e["content"].get("body", "").split("\n")
                    if line.startswith(prefix)
                ]

            async def exchange(prefix: str, count: int) -> tuple[list[str], list[str]]:
                """``count`` lines each way, interleaved; returns what each side expects."""
                to_irc = [f"{prefix}m{i:02d}" for i in range(count)]
                to_matrix = [f"{prefix}i{i:02d}" for i in range(count)]
                for m, i in zip(to_irc, to_matrix, strict=True):
                    await send(alice, room_id, m)
                    await bob.privmsg(channel, i)
                await eventually(lambda: len(on_irc(prefix)) >= count, timeout=60)
                await eventually(lambda: len(on_matrix(prefix)) >= count, timeout=60)
                return to_irc, to_matrix

            # Before: transactions with ids the homeserver will hand out again.
            before = await exchange("before-", 15)
            await asyncio.to_thread(synapse.restart)
            after = await exchange("after-", 25)
            await asyncio.sleep(1.5)  # a duplicate would show up now
            for prefix, (to_irc, to_matrix) in (("before-", before), ("after-", after)):
                assert on_irc(prefix) == to_irc, "Matrix -> IRC: lost, doubled or reordered"
                assert on_matrix(prefix) == to_matrix, "IRC -> Matrix: lost, doubled or reordered"
            reused = [r for r in caplog.records if "reused transaction id" in r.getMessage()]
            if synapse.database_url is None:  # SQLite: the case this test is about happened
                assert len(reused) == 1, "the homeserver reused no transaction id"
    finally:
        await bob.close()
        await bridge.stop()
