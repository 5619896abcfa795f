"""The runtime's Portal and Ghost objects (bridgekit/objects), on SQLite and PostgreSQL
(``BRIDGEKIT_TEST_DB``): one object per row, their row and typed metadata, a portal's lane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import astuple, dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from mautrix.util.async_db import Database

from bridgekit.contract.events import PortalKey
from bridgekit.database.db import create_database, migrate, package_migrations
from bridgekit.database.records import GhostRow, PortalRow
from bridgekit.database.store import Store
from bridgekit.objects import Ghost, Ghosts, MetadataTypes, Portal, Portals
from bridgekit.objects.ghost import MAX_DISPLAYNAME
from bridgekit.outbox.ordering import OrderedExecutor


@dataclass
class Meta:
    VERSION = 1
    nick: str = ""
    channels: list[str] = field(default_factory=list)


@dataclass
class Other:
    nick: str = ""


@dataclass
class Runtime:
    store: Store
    portals: Portals
    ghosts: Ghosts
    lanes: OrderedExecutor


Open = Callable[[], Awaitable[Runtime]]


@pytest.fixture
async def open_runtime(db_url: str) -> AsyncIterator[Open]:
    """Each call: a fresh process's view of the test database (a restart), wired as the
    bridge wires it (bridge.py)."""
    opened: list[Database] = []
    executors: list[OrderedExecutor] = []
    connectors = {"irc": SimpleNamespace(portal_metadata_type=Meta, ghost_metadata_type=Meta)}

    async def opener() -> Runtime:
        db = create_database(db_url)
        await db.start()
        opened.append(db)
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        store = Store(db)
        lanes = OrderedExecutor("test")
        executors.append(lanes)
        types = MetadataTypes(connectors)
        portals, ghosts = Portals(store, lanes, types), Ghosts(store, types)
        store.set_factories(portal=portals.make, ghost=ghosts.make)
        await store.load()
        return Runtime(store, portals, ghosts, lanes)

    yield opener
    for lanes in executors:
        await lanes.stop(timeout=1)
    for db in opened:
        await db.stop()


@pytest.fixture
async def rt(open_runtime: Open) -> Runtime:
    return await open_runtime()


KEY = PortalKey("#chan", "")


async def a_portal(rt: Runtime, key: PortalKey = KEY, mxid: str = "!r:x") -> Portal:
    portal = rt.portals.new("irc", key)
    portal.mxid = mxid
    await portal.save()
    return portal


# -- one object per row ------------------------------------------------------------------------


async def test_every_lookup_of_a_portal_returns_its_one_object(open_runtime: Open) -> None:
    rt = await open_runtime()
    made = await a_portal(rt)
    assert isinstance(made, Portal) and isinstance(made, PortalRow)
    assert await rt.portals.get("irc", KEY) is made
    assert await rt.portals.by_room("!r:x") is made
    assert [p for p in await rt.portals.all()] == [made]
    assert (await rt.portals.all())[0] is made

    again = await open_runtime()  # a restart: built from the row
    first = await again.portals.get("irc", KEY)
    assert isinstance(first, Portal) and first is not made and astuple(first) == astuple(made)
    assert first == first and first != made and len({first, first}) == 1  # equal to itself
    assert await again.portals.by_room("!r:x") is first
    assert await again.store.get_portal("irc", KEY) is first
    assert (await again.portals.all())[0] is first
    assert repr(first).startswith("Portal(network='irc'")


async def test_every_lookup_of_a_ghost_returns_its_one_object(open_runtime: Open) -> None:
    rt = await open_runtime()
    ghost = rt.ghosts.new("irc", "bob", "@_irc_bob:x")
    ghost.name = "Bob"
    await ghost.save()
    assert await rt.ghosts.get("irc", "bob") is ghost

    again = await open_runtime()  # not cached yet: concurrent first lookups agree
    found = await asyncio.gather(*(again.ghosts.get("irc", "bob") for _ in range(5)))
    assert all(g is found[0] for g in found) and isinstance(found[0], Ghost)
    assert astuple(found[0]) == astuple(ghost) and found[0].mxid == "@_irc_bob:x"


async def test_a_plain_store_keeps_building_plain_rows(db_url: str) -> None:
    db = create_database(db_url)
    await db.start()
    try:
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        store = Store(db)
        await store.save_portal(PortalRow("irc", KEY, mxid="!r:x"))
        await store.save_ghost(GhostRow("irc", "bob", "@_irc_bob:x"))
        fresh = Store(db)
        assert type(await fresh.get_portal("irc", KEY)) is PortalRow
        assert type(await fresh.get_ghost("irc", "bob")) is GhostRow
    finally:
        await db.stop()


# -- the row and the typed metadata ------------------------------------------------------------


async def test_a_portal_saves_and_deletes_its_row(open_runtime: Open) -> None:
    rt = await open_runtime()
    portal = await a_portal(rt)
    portal.name, portal.relay_login = "Chan", "L1"
    await portal.save()
    reread = await (await open_runtime()).portals.get("irc", KEY)
    assert reread is not None and (reread.name, reread.relay_login) == ("Chan", "L1")

    await portal.set_net_metadata(Meta("n"))
    await portal.delete()
    assert await rt.portals.get("irc", KEY) is None
    assert await rt.portals.by_room("!r:x") is None
    assert await (await open_runtime()).portals.get("irc", KEY) is None
    again = await a_portal(rt)  # made again: its metadata starts from defaults
    assert await again.net_metadata() == Meta()


async def test_portal_metadata_round_trip(open_runtime: Open) -> None:
    rt = await open_runtime()
    unsaved = rt.portals.new("irc", KEY)
    assert await unsaved.net_metadata() == Meta()
    with pytest.raises(LookupError):  # metadata belongs to a stored portal
        await unsaved.set_net_metadata(Meta("x"))
    with pytest.raises(LookupError):
        await rt.portals.set_net_metadata("irc", KEY, Meta("x"))
    assert await rt.portals.net_metadata("irc", KEY) == Meta()

    portal = await a_portal(rt)
    await portal.set_net_metadata(Meta("n", ["#a"]))
    value = await portal.net_metadata()
    assert value == Meta("n", ["#a"])
    value.channels.append("#b")  # a copy: the stored value changes only through a write
    assert await portal.net_metadata() == Meta("n", ["#a"])
    with pytest.raises(TypeError, match="must be a Meta"):
        await portal.set_net_metadata(Other("n"))
    portal.name = "renamed"
    await portal.save()  # the runtime's writes leave the connector's metadata alone

    fresh = await open_runtime()
    assert await fresh.portals.net_metadata("irc", KEY) == Meta("n", ["#a"])
    found = await fresh.portals.get("irc", KEY)
    assert found is not None and await found.net_metadata() == Meta("n", ["#a"])
    assert found.metadata == {}  # the runtime's own JSON is another column


async def test_ghost_metadata_round_trip(open_runtime: Open) -> None:
    rt = await open_runtime()
    assert await rt.ghosts.net_metadata("irc", "bob") == Meta()
    with pytest.raises(LookupError):
        await rt.ghosts.set_net_metadata("irc", "bob", Meta("x"))
    ghost = rt.ghosts.new("irc", "bob", "@_irc_bob:x")
    await ghost.save()
    await ghost.set_net_metadata(Meta("bob", ["#a"]))
    with pytest.raises(TypeError):
        await ghost.set_net_metadata({"nick": "bob"})
    fresh = await open_runtime()
    assert await fresh.ghosts.net_metadata("irc", "bob") == Meta("bob", ["#a"])
    with pytest.raises(TypeError, match="declares no ghost_metadata_type"):
        await fresh.ghosts.net_metadata("xmpp", "bob")


# -- the ghost's profile -----------------------------------------------------------------------


class Intent:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def set_displayname(self, name: str) -> None:
        self.calls.append(("name", name))

    async def set_avatar_url(self, mxc: str) -> None:
        self.calls.append(("avatar", mxc))


async def test_a_ghost_applies_only_what_changed(rt: Runtime) -> None:
    ghost = rt.ghosts.new("irc", "bob", "@_irc_bob:x")
    intent = Intent()
    uploads: list[str] = []

    async def avatar_mxc(url: str) -> str:
        uploads.append(url)
        if "broken" in url:
            raise OSError("unreachable")
        return "mxc://x/" + url.rsplit("/", 1)[1]

    def update(name: Any, avatar: Any, is_bot: Any) -> Awaitable[bool]:
        return ghost.update_info(intent, name, avatar, is_bot, avatar_mxc=avatar_mxc)

    assert await update("Bob", "https://img/a", None)
    assert intent.calls == [("name", "Bob"), ("avatar", "mxc://x/a")]
    assert (ghost.name, ghost.avatar_url, ghost.is_bot) == ("Bob", "https://img/a", False)
    assert not await update("Bob", "https://img/a", False)  # the same again costs nothing
    assert len(intent.calls) == 2 and uploads == ["https://img/a"]
    assert await update(None, None, True) and ghost.is_bot and len(intent.calls) == 2
    assert not await update(None, "https://img/broken", None)  # tried again next report
    assert ghost.avatar_url == "https://img/a"
    assert await update("", "", None)  # no name: its remote id; no avatar: removed
    assert intent.calls[-2:] == [("name", "bob"), ("avatar", "")]
    assert await update("x" * 1000, None, None)
    assert ghost.name == "x" * MAX_DISPLAYNAME


# -- a portal's lane ---------------------------------------------------------------------------


async def test_a_portal_runs_its_jobs_in_order_and_portals_in_parallel(rt: Runtime) -> None:
    one = await a_portal(rt, PortalKey("#one"), "!one:x")
    two = await a_portal(rt, PortalKey("#two"), "!two:x")
    ran: list[str] = []
    gate = asyncio.Event()

    def job(name: str, wait: bool = False) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if wait:
                await gate.wait()
            await asyncio.sleep(0)
            ran.append(name)

        return run

    one.submit(job("one-1", wait=True))
    for i in range(2, 6):
        one.submit(job(f"one-{i}"))
    for i in range(1, 4):
        two.submit(job(f"two-{i}"))
    assert one.queued == 5 and two.queued == 3
    # portal two's lane runs while portal one's first job waits
    await asyncio.wait_for(_until(lambda: len(ran) == 3), 5)
    assert ran == ["two-1", "two-2", "two-3"] and one.queued == 5
    gate.set()
    await rt.lanes.wait_idle(5)
    assert ran[3:] == [f"one-{i}" for i in range(1, 6)]
    assert one.queued == 0


async def test_events_queued_before_their_portal_exists_share_its_lane(rt: Runtime) -> None:
    """The outbox queues a chat's first events before handling them creates the portal."""
    lane = Portals.lane("irc", KEY)
    ran: list[str] = []
    gate = asyncio.Event()

    async def first() -> None:
        await gate.wait()
        ran.append("first")

    async def later() -> None:
        ran.append("later")

    rt.portals.submit(lane, first)
    portal = await a_portal(rt)  # created while its lane is busy
    assert portal.lane == lane and portal.queued == 1
    portal.submit(later)
    assert rt.portals.queued(lane) == 2 and rt.portals.behind(lane) == [later]
    gate.set()
    await rt.lanes.wait_idle(5)
    assert ran == ["first", "later"]


async def _until(check: Callable[[], bool]) -> None:
    while not check():  # noqa: ASYNC110 - polls state the jobs change
        await asyncio.sleep(0.01)
