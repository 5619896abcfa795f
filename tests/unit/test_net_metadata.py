"""Typed connector metadata: versions, bad rows, unknown keys, the cache, on both engines."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from mautrix.util.async_db import Database

from bridgekit.contract.connector import LoginInfo
from bridgekit.contract.events import PortalKey
from bridgekit.database.db import create_database, migrate, package_migrations
from bridgekit.database.net_metadata import MetadataTooNew, decode, encode
from bridgekit.database.store import BridgeUser, GhostRow, PortalRow, Store


@dataclass
class Inner:
    level: int = 0


@dataclass
class Meta:
    VERSION: ClassVar[int] = 2
    nick: str | None = None
    channels: list[str] = field(default_factory=list)
    score: float = 0.0
    inner: Inner = field(default_factory=Inner)

    @classmethod
    def upgrade_metadata(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:  # v1 kept one channel under "chan"
            chan = data.pop("chan", None)
            data["channels"] = [chan] if chan else []
        return data


def test_roundtrip_and_nested() -> None:
    value = Meta("alice", ["#a"], 1.5, Inner(3))
    assert decode(Meta, encode(value), 2, "t") == value


def test_never_written_is_the_default() -> None:
    assert decode(Meta, "{}", 0, "t") == Meta()


def test_an_older_version_goes_through_the_upgrade_hook() -> None:
    assert decode(Meta, '{"nick": "bob", "chan": "#x"}', 1, "t") == Meta("bob", ["#x"])


def test_a_newer_version_is_refused_clearly() -> None:
    with pytest.raises(MetadataTooNew, match="version 3 but this Meta knows only up to 2"):
        decode(Meta, '{"nick": "bob"}', 3, "t")


def test_unknown_keys_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "bridgekit.database.net_metadata"):
        assert decode(Meta, '{"nick": "bob", "gone": 1}', 2, "irc login L1") == Meta("bob")
    assert "irc login L1: dropping keys ['gone']" in caplog.text


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"nick": 5}',
        '{"channels": "#a"}',
        '{"score": true}',
        '{"inner": {"level": "high"}}',
        "null",
    ],
)
def test_a_value_that_fails_to_decode_is_logged_and_defaults(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "bridgekit.database.net_metadata"):
        assert decode(Meta, raw, 2, "irc login L1") == Meta()
    assert "irc login L1: stored Meta cannot be decoded" in caplog.text


def test_a_type_without_defaults_is_a_clear_programming_error() -> None:
    @dataclass
    class Strict:
        token: str

    with pytest.raises(TypeError, match="Strict needs a default for every field"):
        decode(Strict, "not json", 1, "t")


# -- the store, on the test's engine -------------------------------------------------------


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened: list[Database] = []
    db = create_database(db_url)
    await db.start()
    opened.append(db)
    await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
    yield Store(db)
    for d in opened:
        await d.stop()


async def test_store_rows_of_each_table(store: Store) -> None:
    meta = store.net_metadata
    key = PortalKey("#chan", "")
    with pytest.raises(LookupError):  # a row the runtime has not stored
        await meta.set("portal", "irc", (key.id, key.receiver), Meta("x"))
    assert await meta.get("portal", "irc", (key.id, key.receiver), Meta) == Meta()
    await store.save_portal(PortalRow("irc", key, mxid="!r:x"))
    await store.save_ghost(GhostRow("irc", "bob", "@_irc_bob:x"))
    await store.save_user(BridgeUser("@u:x"))
    await store.save_login(LoginInfo("L1", "@u:x", "irc", "srv/u"))
    await meta.set("portal", "irc", (key.id, key.receiver), Meta("p"))
    await meta.set("ghost", "irc", ("bob",), Meta("g"))
    await meta.set("login", "irc", ("L1",), Meta("l", ["#a"]))
    # Another network's rows with the same ids are apart.
    assert await meta.get("ghost", "xmpp", ("bob",), Meta) == Meta()
    # The runtime's own writes of the row leave the connector's metadata alone.
    await store.save_portal(PortalRow("irc", key, mxid="!r:x", name="renamed"))
    await store.save_login(LoginInfo("L1", "@u:x", "irc", "srv/u", "u2", {"server": "srv"}))
    fresh = Store(store.db)  # a restart: nothing cached
    assert await fresh.net_metadata.get("portal", "irc", ("#chan", ""), Meta) == Meta("p")
    assert await fresh.net_metadata.get("ghost", "irc", ("bob",), Meta) == Meta("g")
    assert await fresh.net_metadata.get("login", "irc", ("L1",), Meta) == Meta("l", ["#a"])
    version = await store.db.fetchval("SELECT net_metadata_v FROM user_login WHERE id='L1'")
    assert version == 2


async def test_reads_are_copies_and_deleted_rows_forget(store: Store) -> None:
    meta = store.net_metadata
    await store.save_user(BridgeUser("@u:x"))
    await store.save_login(LoginInfo("L1", "@u:x", "irc", "srv/u"))
    await meta.set("login", "irc", ("L1",), Meta("l", ["#a"]))
    got = await meta.get("login", "irc", ("L1",), Meta)
    got.channels.append("#b")  # not written: the stored value is unchanged
    assert (await meta.get("login", "irc", ("L1",), Meta)).channels == ["#a"]
    await store.delete_login("L1")
    await store.save_login(LoginInfo("L1", "@u:x", "irc", "srv/u"))
    assert await meta.get("login", "irc", ("L1",), Meta) == Meta()


async def test_reads_are_cached(store: Store) -> None:
    meta = store.net_metadata
    await store.save_user(BridgeUser("@u:x"))
    await store.save_login(LoginInfo("L1", "@u:x", "irc", "srv/u"))
    await meta.set("login", "irc", ("L1",), Meta("l"))
    await store.db.execute('UPDATE user_login SET net_metadata=\'{"nick":"db"}\'')
    assert (await meta.get("login", "irc", ("L1",), Meta)).nick == "l"  # no SQL per read
    assert (await Store(store.db).net_metadata.get("login", "irc", ("L1",), Meta)).nick == "db"


async def test_a_read_that_raced_a_write_does_not_put_the_old_value_back(store: Store) -> None:
    """A read that fetched the row before a write committed must not leave its (older) value
    in the cache: IRC lost a channel list so (saved, then read back empty)."""
    meta = store.net_metadata
    await store.save_user(BridgeUser("@u:x"))
    await store.save_login(LoginInfo("L1", "@u:x", "irc", "srv/u"))
    fetched, go_on = asyncio.Event(), asyncio.Event()
    real_fetchrow = store.db.fetchrow

    async def slow_fetchrow(*args: Any) -> Any:
        row = await real_fetchrow(*args)
        fetched.set()
        await go_on.wait()
        return row

    store.db.fetchrow = slow_fetchrow  # type: ignore[method-assign]
    reader = asyncio.create_task(meta.get("login", "irc", ("L1",), Meta))
    await fetched.wait()
    await meta.set("login", "irc", ("L1",), Meta("new"))
    go_on.set()
    await reader  # (it gets the newer value: the write had landed in the cache)
    store.db.fetchrow = real_fetchrow  # type: ignore[method-assign]
    assert await meta.get("login", "irc", ("L1",), Meta) == Meta("new")
