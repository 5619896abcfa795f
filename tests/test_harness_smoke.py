"""Smoke tests proving the integration-test harness (real Synapse, real PostgreSQL) works."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import yaml

from bridgekit.testing.matrix_client import MatrixError, MatrixTestClient
from bridgekit.testing.ports import free_port
from bridgekit.testing.postgres import (
    create_database,
    drop_database,
    ensure_postgres,
    postgres_available,
)
from bridgekit.testing.synapse import SynapseServer, start_synapse


def _write_registration(path: Path) -> Path:
    registration = {
        "id": "smoke",
        "url": f"http://127.0.0.1:{free_port()}",
        "as_token": secrets.token_hex(16),
        "hs_token": secrets.token_hex(16),
        "sender_localpart": "smokebot",
        "rate_limited": False,
        "namespaces": {
            "users": [{"exclusive": True, "regex": "@_smoke_.*"}],
            "aliases": [],
            "rooms": [],
        },
    }
    path.write_text(yaml.safe_dump(registration), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    workdir = tmp_path_factory.mktemp("synapse")
    registration = _write_registration(workdir / "smoke-registration.yaml")
    server = start_synapse(workdir, [registration])
    try:
        yield server
    finally:
        server.stop()


def _localpart(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.mark.synapse
async def test_message_roundtrip(synapse: SynapseServer) -> None:
    async with (
        await synapse.register_user(_localpart("alice")) as alice,
        await synapse.register_user(_localpart("bob")) as bob,
    ):
        assert alice.user_id.endswith(":bridgekit.test")
        room_id = await alice.create_room(name="smoke", invite=[bob.user_id])
        invited_room, inviter = await bob.wait_for_invite()
        assert (invited_room, inviter) == (room_id, alice.user_id)
        assert await bob.join(room_id) == room_id
        assert bob.user_id in await alice.joined_members(room_id)

        event_id = await alice.send_text(room_id, "hello bob")
        seen = await bob.wait_for_event(
            room_id, lambda ev: ev.get("content", {}).get("body") == "hello bob"
        )
        assert seen["event_id"] == event_id
        assert seen["sender"] == alice.user_id
        # Already-buffered events stay matchable.
        again = await bob.wait_for_event(None, lambda ev: ev.get("event_id") == event_id, 1)
        assert again["room_id"] == room_id

        await bob.react(room_id, event_id, "👍")
        await alice.wait_for_event(room_id, lambda ev: ev["type"] == "m.reaction")
        await alice.redact(room_id, event_id, reason="smoke")
        assert (await alice.get_state(room_id, "m.room.name"))["name"] == "smoke"
        bodies = [ev["content"].get("body") for ev in await bob.messages(room_id)]
        assert "hello bob" not in bodies  # redacted
        assert room_id in await bob.joined_rooms()


@pytest.mark.synapse
async def test_alias_and_errors(synapse: SynapseServer) -> None:
    alias_local = _localpart("room")
    async with (
        await synapse.register_user(_localpart("carol")) as carol,
        await synapse.register_user(_localpart("dave")) as dave,
    ):
        room_id = await carol.create_room(preset="public_chat", room_alias_name=alias_local)
        alias = f"#{alias_local}:{synapse.server_name}"
        assert await dave.resolve_alias(alias) == room_id
        assert await dave.join(alias) == room_id
        with pytest.raises(MatrixError) as info:
            await dave.get_state(room_id, "m.room.topic")
        assert info.value.status == 404 and info.value.errcode == "M_NOT_FOUND"


@pytest.mark.synapse
async def test_restart_keeps_data(synapse: SynapseServer) -> None:
    port = synapse.port
    localpart = _localpart("erin")
    async with await synapse.register_user(localpart, password="secret") as erin:
        room_id = await erin.create_room(name="persist")
        synapse.stop()
        with pytest.raises((aiohttp.ClientError, OSError)):
            await erin.joined_rooms()
        synapse.start()
        assert synapse.port == port
        # The old access token still works, and the room survived.
        await erin.send_text(room_id, "after restart")
        assert room_id in await erin.joined_rooms()
    async with await MatrixTestClient.login(synapse.base_url, localpart, "secret") as again:
        assert again.user_id == synapse.user_id(localpart)
        bodies = [ev["content"].get("body") for ev in await again.messages(room_id)]
        assert bodies[-1] == "after restart"


@pytest.mark.skipif(not postgres_available(), reason="no initdb and no BRIDGEKIT_TEST_POSTGRES")
async def test_postgres_database() -> None:
    dsn = await create_database(ensure_postgres())
    try:
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
    finally:
        await drop_database(dsn)
