"""A database as the code before typed metadata left it (runtime schema v4, no connector schema,
IRC and XMPP state in key/value rows), upgraded: each login's state is on its row, typed, the
old rows are gone, and every other key sits under its network's prefix. Both engines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from mautrix.util.async_db import Database

from bridgekit.database.db import create_database, migrate, package_migrations
from bridgekit.database.net_metadata import decode
from bridges.irc.state import IRCLoginMeta
from bridges.xmpp.state import XMPPLoginMeta

OLD_KV = {
    "irc:nick:L1": "alice_",
    "irc:pass:L1": "v1:token-of-the-password",
    "irc:keys:L1": "v1:token-of-the-keys",
    "irc:channels:L1": json.dumps(["#a", "#B"]),
    "irc:pass:gone": "v1:a logged-out login's",  # no login row: dropped with the rest
    "irc:sent:L1:#a|": "progress",
    "xmpp:rooms:X1": json.dumps({"room@muc.example.org": "alice"}),
    "xmpp:alias:room@muc.example.org|:m1": "s1",
    "upgrade:!old:example.org": "!new:example.org",  # the runtime's own: untouched
    "replay/outbox/7": "2",
}


@pytest.fixture
async def old_db(db_url: str) -> AsyncIterator[Database]:
    db = create_database(db_url)
    await db.start()
    await migrate(
        db, "bridgekit", package_migrations("bridgekit.database.migrations")[:4]
    )  # main's
    await db.execute("INSERT INTO bridge_user (mxid) VALUES ('@alice:x')")
    for login_id, network in (("L1", "irc"), ("L2", "irc"), ("X1", "xmpp"), ("F1", "fake")):
        await db.execute(
            "INSERT INTO user_login (id, user_mxid, network, remote_id, metadata, created_at) "
            "VALUES ($1, '@alice:x', $2, $1, '{\"server\": \"s\"}', 0)",
            login_id,
            network,
        )
    for key, value in OLD_KV.items():
        await db.execute("INSERT INTO kv (key, value) VALUES ($1, $2)", key, value)
    yield db
    await db.stop()


async def _meta(db: Database, login_id: str) -> tuple[str, int]:
    row = await db.fetchrow(
        "SELECT net_metadata, net_metadata_v FROM user_login WHERE id=$1", login_id
    )
    return row["net_metadata"], row["net_metadata_v"]


async def test_old_kv_state_moves_onto_the_login_rows(old_db: Database) -> None:
    await migrate(old_db, "bridgekit", package_migrations("bridgekit.database.migrations"))
    assert await migrate(old_db, "irc", package_migrations("bridges.irc.migrations")) == 1
    assert await migrate(old_db, "xmpp", package_migrations("bridges.xmpp.migrations")) == 1

    raw, version = await _meta(old_db, "L1")
    assert decode(IRCLoginMeta, raw, version, "L1") == IRCLoginMeta(
        nick="alice_",
        password="v1:token-of-the-password",
        channel_keys="v1:token-of-the-keys",
        channels=["#a", "#B"],
    )
    raw, version = await _meta(old_db, "L2")  # a login without stored state
    assert version == 1 and decode(IRCLoginMeta, raw, version, "L2") == IRCLoginMeta()
    raw, version = await _meta(old_db, "X1")
    assert decode(XMPPLoginMeta, raw, version, "X1") == XMPPLoginMeta(
        {"room@muc.example.org": "alice"}
    )
    assert await _meta(old_db, "F1") == ("{}", 0)  # another network's login: untouched

    rows = await old_db.fetch("SELECT key, value FROM kv ORDER BY key")
    assert {r["key"]: r["value"] for r in rows} == {
        "net:irc:irc:sent:L1:#a|": "progress",
        "net:xmpp:xmpp:alias:room@muc.example.org|:m1": "s1",
        "replay/outbox/7": "2",
        "upgrade:!old:example.org": "!new:example.org",
    }
    login_metadata = await old_db.fetchval("SELECT metadata FROM user_login WHERE id='L1'")
    assert json.loads(login_metadata) == {"server": "s"}  # the login flow's own: kept
