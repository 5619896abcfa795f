"""The login service keeps one :class:`UserLogin` per loaded login and one :class:`User` per
user: the runtime's maps of clients and states are indexes of those objects, a login's typed
metadata is read and written through it, and a user's row through the user. (End to end, with
the real connectors: tests/test_e2e_net_metadata.py, tests/xmpp/test_e2e_restart.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from bridgekit.contract.connector import BridgeStateEvent, LoginInfo
from bridgekit.database.db import create_database, migrate, package_migrations
from bridgekit.database.records import BridgeUser
from bridgekit.database.store import Store
from bridgekit.logins import LoginService
from bridgekit.objects.user_login import UserLogin
from bridgekit.portal.presence import PresenceKeeper
from bridgekit.settings import BridgeSettings

ALICE = "@alice:example.org"


@dataclass
class Meta:
    rooms: list[str] = field(default_factory=list)


class Client:
    def __init__(self, login: LoginInfo) -> None:
        self.login = login
        self.connected = asyncio.Event()
        self.disconnected = False

    async def connect(self) -> None:
        self.connected.set()

    async def disconnect(self) -> None:
        self.disconnected = True


class Connector:
    name = "stub"

    def __init__(self) -> None:
        self.logged_out: list[str] = []

    async def load_login(self, login: LoginInfo) -> Client:
        return Client(login)

    async def logout(self, login: LoginInfo) -> None:
        self.logged_out.append(login.id)


class Harness:
    def __init__(self, store: Store) -> None:
        self.tasks: list[asyncio.Task[Any]] = []
        self.notified: list[tuple[str, str]] = []
        self.caught_up: list[str] = []
        self.connector = Connector()

        async def notify_user(mxid: str, text: str) -> bool:
            self.notified.append((mxid, text))
            return True

        async def catch_up(login_id: str) -> None:
            self.caught_up.append(login_id)

        async def set_presence(mxid: str, presence: str, status: str | None) -> None:
            pass

        self.service = LoginService(
            store,
            {"stub": self.connector},  # type: ignore[dict-item]
            BridgeSettings(),
            PresenceKeeper(25, set_presence),
            self.spawn,
            notify_user,
            catch_up,
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    db = create_database(db_url)
    await db.start()
    await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
    store = Store(db)
    await store.save_user(BridgeUser(ALICE))  # a login's user is stored first
    yield store
    await db.stop()


async def test_a_loaded_login_is_one_object_behind_the_runtimes_indexes(store: Store) -> None:
    h = Harness(store)
    svc = h.service
    client = await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice", "Alice"))
    await h.settle()
    login = svc.get("l1")
    assert isinstance(login, UserLogin)
    assert (login.id, login.network, login.user_mxid, login.remote_name) == (
        "l1",
        "stub",
        ALICE,
        "Alice",
    )
    assert login.client is client is svc.clients["l1"]
    assert login.state is svc.states["l1"] and login.state.network == "stub"
    assert login.state.state == BridgeStateEvent.CONNECTING
    user = svc.user(ALICE)
    assert user is svc.user(ALICE) and user.logins == [login]
    assert svc.clients_of(ALICE) == [client] == user.clients("stub")
    assert svc.clients_of(ALICE, "other") == [] and svc.clients_of("@bob:example.org") == []

    svc.report_state("l1", BridgeStateEvent.CONNECTED)
    await h.settle()
    assert h.caught_up == ["l1"]  # a (re)connect catches up

    await svc.remove_login("l1")
    await h.settle()
    assert svc.get("l1") is None and "l1" not in svc.clients and "l1" not in svc.states
    assert user.logins == [] and client.disconnected and h.connector.logged_out == ["l1"]
    assert await store.logins() == []


async def test_a_login_owns_its_metadata_and_a_user_its_row(store: Store) -> None:
    h = Harness(store)
    svc = h.service
    await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice"))
    login = svc.get("l1")
    assert login is not None
    assert await login.metadata(Meta) == Meta()  # never written: the default
    await login.set_metadata(Meta(["#a"]))
    assert await login.metadata(Meta) == Meta(["#a"])
    stored = await store.db.fetchval("SELECT net_metadata FROM user_login WHERE id='l1'")
    assert stored == '{"rooms":["#a"]}'

    user = svc.user(ALICE)
    assert await user.row() == BridgeUser(ALICE) and await user.management_room() is None
    await user.save(BridgeUser(ALICE, management_room="!mgmt:example.org"))
    assert await user.management_room() == "!mgmt:example.org"
    assert (await store.get_user(ALICE)).management_room == "!mgmt:example.org"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        await user.save(BridgeUser("@mallory:example.org"))


async def test_bad_credentials_reach_the_logins_user(store: Store) -> None:
    h = Harness(store)
    svc = h.service
    await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice", "Alice"))
    svc.report_state("l1", BridgeStateEvent.BAD_CREDENTIALS, "wrong password")
    await h.settle()
    assert h.notified == [(ALICE, "stub login Alice: BAD_CREDENTIALS (wrong password)")]


async def test_a_login_added_again_replaces_the_loaded_one(store: Store) -> None:
    """Logging in again under the same id (new credentials after BAD_CREDENTIALS) leaves one
    login: the old client is disconnected and gone from the user's clients."""
    h = Harness(store)
    svc = h.service
    old = await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice", "Alice"))
    svc.report_state("l1", BridgeStateEvent.BAD_CREDENTIALS, "token revoked")
    new = await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice", "Alice again"))
    await h.settle()
    assert old is not new and old.disconnected and not new.disconnected  # type: ignore[attr-defined]
    assert svc.clients_of(ALICE) == [new] and svc.clients["l1"] is new
    assert svc.get("l1").remote_name == "Alice again"  # type: ignore[union-attr]
    assert [lg.id for lg in svc.user(ALICE).logins] == ["l1"]
    assert [lg.id for lg in await store.logins()] == ["l1"]


async def test_a_login_added_again_with_the_same_client_is_not_disconnected(
    store: Store,
) -> None:
    """A connector may hand its live client back for the same login (xmpp's auto_login for a
    user who joins one more room): it stays connected, listed once."""
    h = Harness(store)
    svc = h.service
    client = await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice", "Alice"))

    async def same(login: LoginInfo) -> Client:
        return client  # type: ignore[return-value]

    h.connector.load_login = same  # type: ignore[method-assign]
    assert await svc.add_login(LoginInfo("l1", ALICE, "stub", "alice", "Alice")) is client
    await h.settle()
    assert not client.disconnected  # type: ignore[attr-defined]
    assert svc.clients_of(ALICE) == [client]
