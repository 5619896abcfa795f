"""The runtime's persistence, on SQLite and PostgreSQL (``BRIDGEKIT_TEST_DB``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from mautrix.util.async_db import Database

from bridgekit.contract.connector import LoginInfo
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteMessage,
    remote_event_to_json,
)
from bridgekit.database.db import create_database, migrate, package_migrations
from bridgekit.database.store import BridgeUser, GhostRow, MessageRow, PortalRow, ReactionRow, Store
from bridgekit.outbox.remote_queue import merged_lines, merged_payload

NASTY = "x'); DROP TABLE portal; --"

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture
async def open_store(db_url: str) -> AsyncIterator[Opener]:
    """Open a Store on the test database; each call is a fresh process's view (a restart)."""
    opened: list[Database] = []

    async def opener() -> Store:
        db = create_database(db_url)
        await db.start()
        opened.append(db)
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        return Store(db)

    yield opener
    for db in opened:
        await db.stop()


@pytest.fixture
async def store(open_store: Opener) -> Store:
    return await open_store()


def message(
    remote_id: str = "m1",
    part: str = "",
    event_id: str = "$e1",
    portal: PortalKey = PortalKey("chat"),
    ts: int = 1000,
) -> MessageRow:
    return MessageRow(
        network="fake",
        portal=portal,
        remote_id=remote_id,
        part=part,
        event_id=event_id,
        room_id="!room:example.org",
        sender_mxid="@_fake_bob:example.org",
        sender_remote="bob",
        ts=ts,
        thread_root=None,
    )


# -- transactions (the durable inbox) --------------------------------------------------------


def k(txn_id: str, digest: str = "d") -> tuple[str, str]:
    """A transaction key: the homeserver's id and the digest of its event ids."""
    return (txn_id, digest)


async def test_store_transaction_is_new_for_a_new_txn_id(store: Store) -> None:
    assert await store.store_transaction(k("t1"), '{"events":[]}') == "new"


async def test_store_transaction_is_a_retry_for_a_repeated_key(store: Store) -> None:
    await store.store_transaction(k("t1"), '{"events":[]}')
    assert await store.store_transaction(k("t1"), '{"events":[]}') == "retry"


async def test_a_txn_id_stored_with_other_events_is_reused_not_a_retry(store: Store) -> None:
    """Synapse numbers transactions again after a restart: its id 1 now holds new events."""
    assert await store.store_transaction(k("1", "old"), '{"events":[1]}') == "new"
    await store.finish_transactions([k("1", "old")])
    assert await store.store_transaction(k("1", "new"), '{"events":[2]}') == "reused"
    assert await store.store_transaction(k("1", "new"), '{"events":[2]}') == "retry"
    assert await store.store_transaction(k("1", "old"), '{"events":[1]}') == "retry"
    assert await store.pending_transactions() == [(k("1", "new"), '{"events":[2]}')]


async def test_a_reused_txn_id_leaves_the_pending_transaction_of_that_id_alone(
    store: Store,
) -> None:
    """Acknowledged but not handled yet when the homeserver restarted: both stay pending."""
    await store.store_transaction(k("1", "old"), "old")
    assert await store.store_transaction(k("1", "new"), "new") == "reused"
    assert sorted(await store.pending_transactions()) == [
        (k("1", "new"), "new"),
        (k("1", "old"), "old"),
    ]
    await store.finish_transactions([k("1", "new")])
    assert await store.pending_transactions() == [(k("1", "old"), "old")]


async def test_repeated_key_is_recognised_after_a_restart(open_store: Opener) -> None:
    first = await open_store()
    assert await first.store_transaction(k("t1"), "{}") == "new"
    restarted = await open_store()
    assert await restarted.store_transaction(k("t1"), "{}") == "retry"
    assert await restarted.store_transaction(k("t1", "other"), "{}") == "reused"


async def test_repeated_key_is_recognised_after_it_is_finished(store: Store) -> None:
    await store.store_transaction(k("t1"), "{}")
    await store.finish_transactions([k("t1")])
    assert await store.store_transaction(k("t1"), "{}") == "retry"


async def test_stored_transactions_are_pending_in_arrival_order(store: Store) -> None:
    for txn in ("b", "a", "c"):
        await store.store_transaction(k(txn), f'{{"id":"{txn}"}}')
    pending = await store.pending_transactions()
    # received_at has millisecond resolution; ties are broken by txn id.
    assert sorted(pending) == [
        (k("a"), '{"id":"a"}'),
        (k("b"), '{"id":"b"}'),
        (k("c"), '{"id":"c"}'),
    ]


async def test_finish_transactions_removes_them_from_pending(store: Store) -> None:
    for txn in ("t1", "t2", "t3"):
        await store.store_transaction(k(txn), "{}")
    await store.finish_transactions([k("t1"), k("t3")])
    assert await store.pending_transactions() == [(k("t2"), "{}")]


async def test_finishing_a_transaction_commits_with_what_its_handling_queued(
    open_store: Opener,
) -> None:
    first = await open_store()
    await first.store_transaction(k("t1"), '{"events":[1]}')
    first.add_message_soon(message("m1", event_id="$e1"))  # queued, not awaited
    await first.finish_transactions([k("t1")])
    restarted = await open_store()
    assert await restarted.pending_transactions() == []
    found = await restarted.message_by_remote("fake", PortalKey("chat"), "m1")
    assert found is not None and found.event_id == "$e1"


async def test_a_failed_group_commit_leaves_the_transaction_replayable(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses every commit (full, gone): nothing is marked finished."""
    first = await open_store()
    await first.store_transaction(k("t1"), '{"events":[1]}')
    first.add_message_soon(message("m1", event_id="$e1"))

    async def refuse(groups: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(first.commit, "_commit_groups", refuse)
    with pytest.raises(OSError, match="disk full"):
        await first.finish_transactions([k("t1")])
    restarted = await open_store()
    assert await restarted.pending_transactions() == [(k("t1"), '{"events":[1]}')]


async def test_one_bad_write_does_not_sink_the_others_of_its_group_commit(
    open_store: Opener,
) -> None:
    """A row the database refuses (a list where text belongs) fails alone: the other
    portal's mapping and the transaction's "finished" mark in the same commit hold."""
    first = await open_store()
    await first.store_transaction(k("t1"), '{"events":[1]}')
    bad = message("m1", event_id="$bad")
    bad.thread_root = ["$a", "$b"]  # type: ignore[assignment]
    first.add_message_soon(message("m0", event_id="$before", portal=PortalKey("other")))
    first.add_message_soon(bad)
    first.add_message_soon(message("m2", event_id="$good", portal=PortalKey("other")))
    await first.finish_transactions([k("t1")])
    restarted = await open_store()
    assert await restarted.pending_transactions() == []
    for remote_id, event_id in (("m0", "$before"), ("m2", "$good")):
        found = await restarted.message_by_remote("fake", PortalKey("other"), remote_id)
        assert found is not None and found.event_id == event_id
    assert await restarted.message_by_remote("fake", PortalKey("chat"), "m1") is None
    # Committed or refused, every queued mapping left the pending index (no future per
    # mapping: the group commit calls each one's callback itself, failures included).
    assert first.messages._pending_by_remote == {}


async def test_a_write_that_fails_alone_tells_its_waiter(store: Store) -> None:
    with pytest.raises(Exception, match="no_such_table"):
        await store.commit.enqueue("INSERT INTO no_such_table VALUES ($1)", (1,))
    await store.set_kv("k", "v")  # the group commit goes on
    assert await store.get_kv("k") == "v"


async def test_pending_transactions_survive_a_restart(open_store: Opener) -> None:
    first = await open_store()
    await first.store_transaction(k("t1"), '{"events":[1]}')
    restarted = await open_store()
    assert await restarted.pending_transactions() == [(k("t1"), '{"events":[1]}')]


async def test_prune_removes_only_old_finished_transactions(store: Store) -> None:
    await store.store_transaction(k("done"), "{}")
    await store.store_transaction(k("open"), "{}")
    await store.finish_transactions([k("done")])
    await store.prune_transactions(older_than_ms=-60_000)  # everything is "old"
    assert await store.pending_transactions() == [(k("open"), "{}")]
    assert await store.store_transaction(k("done"), "{}") == "new"
    assert await store.store_transaction(k("open"), "{}") == "retry"


async def test_transactions_from_before_the_digest_are_kept_and_replayed(db_url: str) -> None:
    """Migration 003: a row stored by the previous schema is still pending (digest '')."""
    db = create_database(db_url)
    await db.start()
    try:
        migrations = package_migrations("bridgekit.database.migrations")
        await migrate(db, "bridgekit", migrations[:2])
        await db.execute(
            "INSERT INTO appservice_txn (txn_id, body, received_at) VALUES ($1, $2, $3)",
            "7",
            '{"events":[1]}',
            1,
        )
        await migrate(db, "bridgekit", migrations)
        store = Store(db)
        assert await store.pending_transactions() == [(k("7", ""), '{"events":[1]}')]
        assert await store.store_transaction(k("7", "d"), "{}") == "reused"
    finally:
        await db.stop()


# -- outbox ----------------------------------------------------------------------------------


async def test_outbox_add_many_returns_increasing_sequence_numbers(store: Store) -> None:
    seqs = await store.outbox_add_many([("fake", PortalKey("c"), None, f"p{i}") for i in range(5)])
    assert len(seqs) == 5
    assert seqs == sorted(set(seqs))
    more = await store.outbox_add_many([("fake", PortalKey("c"), None, "p5")])
    assert more[0] > seqs[-1]


async def test_outbox_pending_returns_items_in_sequence_order(store: Store) -> None:
    items = [
        ("fake", PortalKey("c1"), None, "first"),
        ("fake", PortalKey("c2", "login1"), "login1", "second"),
        ("other", PortalKey("c1"), None, "third"),
    ]
    seqs = await store.outbox_add_many(items)
    pending = await store.outbox_pending()
    assert [(i.seq, i.network, i.portal, i.login_id, i.payload) for i in pending] == [
        (seq, *item) for seq, item in zip(seqs, items, strict=True)
    ]


async def test_outbox_done_removes_only_those_items(store: Store) -> None:
    seqs = await store.outbox_add_many([("fake", PortalKey("c"), None, f"p{i}") for i in range(4)])
    store.outbox_done_later([seqs[0], seqs[2]])
    await store.flush()
    assert [i.payload for i in await store.outbox_pending()] == ["p1", "p3"]


async def test_a_merge_of_outbox_rows_is_durable_before_it_is_sent(open_store: Opener) -> None:
    """What a restart finds after a merged send: one row holding the same lines, so the
    replay repeats that send (same seq, same transaction id) rather than merging anew."""
    store = await open_store()
    lines = [
        RemoteMessage(PortalKey("c"), EventSender("bob"), id=f"m{i}", content=MessageContent(t))
        for i, t in enumerate(["one", "two", "three"])
    ]
    payloads = [("fake", PortalKey("c"), None, remote_event_to_json(e)) for e in lines]
    seqs = await store.outbox_add_many([*payloads, ("fake", PortalKey("c"), None, "after")])
    await store.outbox_merge(seqs[0], merged_payload(lines), seqs[1:3])
    pending = await (await open_store()).outbox_pending()  # another process's view
    assert [i.seq for i in pending] == [seqs[0], seqs[3]]
    assert merged_lines(pending[0].payload) == lines
    assert merged_lines(pending[1].payload) is None


async def test_outbox_done_later_rides_on_the_next_outbox_commit(store: Store) -> None:
    seqs = await store.outbox_add_many([("fake", PortalKey("c"), None, f"p{i}") for i in range(3)])
    store.outbox_done_later(seqs[:2])
    assert [i.payload for i in await store.outbox_pending()] == ["p0", "p1", "p2"]  # not yet
    await store.outbox_add_many([("fake", PortalKey("c"), None, "p3")])
    assert [i.payload for i in await store.outbox_pending()] == ["p2", "p3"]


async def test_outbox_done_later_rides_on_the_next_group_commit(store: Store) -> None:
    [seq] = await store.outbox_add_many([("fake", PortalKey("c"), None, "p0")])
    store.outbox_done_later([seq])
    await store.set_kv("k", "v")
    assert await store.outbox_pending() == []


async def test_outbox_done_later_commits_alone_when_nothing_else_writes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bridgekit.database.outbox.DONE_LATER_DELAY", 0.05)
    [seq] = await store.outbox_add_many([("fake", PortalKey("c"), None, "p0")])
    store.outbox_done_later([seq])
    await asyncio.sleep(0.2)
    await store.flush()  # the timer's commit runs as a background write: wait for it
    assert await store.outbox_pending() == []


async def test_flush_commits_outbox_done_later(open_store: Opener) -> None:
    store = await open_store()
    [seq] = await store.outbox_add_many([("fake", PortalKey("c"), None, "p0")])
    store.outbox_done_later([seq])
    await store.flush()
    restarted = await open_store()
    assert await restarted.outbox_pending() == []


async def test_outbox_survives_a_restart(open_store: Opener) -> None:
    first = await open_store()
    await first.outbox_add_many([("fake", PortalKey("c"), None, "payload")])
    restarted = await open_store()
    assert [i.payload for i in await restarted.outbox_pending()] == ["payload"]


async def test_outbox_sequence_numbers_are_not_reused_after_done(open_store: Opener) -> None:
    store = await open_store()
    [first] = await store.outbox_add_many([("fake", PortalKey("c"), None, "a")])
    store.outbox_done_later([first])
    await store.flush()
    restarted = await open_store()
    [second] = await restarted.outbox_add_many([("fake", PortalKey("c"), None, "b")])
    assert second > first


# -- portals ---------------------------------------------------------------------------------


def a_portal(**changes: object) -> PortalRow:
    portal = PortalRow(
        network="fake",
        key=PortalKey("general", ""),
        mxid="!portal:example.org",
        name="General",
        topic="Talk",
        avatar_url="mxc://example.org/abc",
        is_dm=False,
        plumbed=True,
        relay_login="login1",
        metadata={"n": 1, "nested": {"list": [1, "two"]}},
    )
    for key, value in changes.items():
        setattr(portal, key, value)
    return portal


async def test_portal_round_trips_through_the_database(open_store: Opener) -> None:
    store = await open_store()
    await store.save_portal(a_portal())
    fresh = await open_store()  # no cache
    assert await fresh.get_portal("fake", PortalKey("general")) == a_portal()


async def test_portal_is_found_by_its_room_id(open_store: Opener) -> None:
    await (await open_store()).save_portal(a_portal())
    fresh = await open_store()
    assert await fresh.get_portal_by_mxid("!portal:example.org") == a_portal()


async def test_portal_keys_with_different_receivers_are_different_portals(
    open_store: Opener,
) -> None:
    store = await open_store()
    await store.save_portal(a_portal(key=PortalKey("dm", "login1"), mxid="!a:x", name="A"))
    await store.save_portal(a_portal(key=PortalKey("dm", "login2"), mxid="!b:x", name="B"))
    fresh = await open_store()
    assert (await fresh.get_portal("fake", PortalKey("dm", "login1"))).name == "A"
    assert (await fresh.get_portal("fake", PortalKey("dm", "login2"))).name == "B"
    assert await fresh.get_portal("fake", PortalKey("dm")) is None


async def test_saving_a_portal_again_updates_it(open_store: Opener) -> None:
    store = await open_store()
    await store.save_portal(a_portal())
    await store.save_portal(a_portal(name="Renamed", is_dm=True, metadata={}))
    fresh = await open_store()
    assert await fresh.get_portal("fake", PortalKey("general")) == a_portal(
        name="Renamed", is_dm=True, metadata={}
    )


async def test_a_portal_moved_to_a_new_room_is_not_found_by_the_old_room(store: Store) -> None:
    portal = a_portal()
    await store.save_portal(portal)
    assert await store.get_portal_by_mxid("!portal:example.org") is portal
    portal.mxid = "!new:example.org"
    await store.save_portal(portal)
    assert await store.get_portal_by_mxid("!portal:example.org") is None
    assert await store.get_portal_by_mxid("!new:example.org") is portal


async def test_unknown_portal_is_none(store: Store) -> None:
    assert await store.get_portal("fake", PortalKey("nope")) is None
    assert await store.get_portal_by_mxid("!nope:example.org") is None


async def test_all_portals_lists_only_portals_with_a_room(open_store: Opener) -> None:
    store = await open_store()
    await store.save_portal(a_portal())
    await store.save_portal(a_portal(key=PortalKey("roomless"), mxid=None))
    fresh = await open_store()
    assert [p.key for p in await fresh.all_portals()] == [PortalKey("general")]


async def test_delete_portal_removes_it_with_its_messages_and_reactions(open_store: Opener) -> None:
    store = await open_store()
    portal = a_portal()
    other = a_portal(key=PortalKey("other"), mxid="!other:example.org")
    await store.save_portal(portal)
    await store.save_portal(other)
    await store.add_message(message("m1", event_id="$in", portal=portal.key))
    await store.add_message(message("m1", event_id="$elsewhere", portal=other.key))
    await store.add_reaction(reaction(portal.key, "$r1"))
    await store.delete_portal(portal)
    for view in (store, await open_store()):
        assert await view.get_portal("fake", portal.key) is None
        assert await view.get_portal_by_mxid("!portal:example.org") is None
        assert await view.message_by_event("$in") is None
        assert await view.message_by_remote("fake", portal.key, "m1") is None
        assert await view.reaction_by_event("$r1") is None
        assert (await view.message_by_event("$elsewhere")).portal == other.key


# -- ghosts ----------------------------------------------------------------------------------


async def test_ghost_round_trips_through_the_database(open_store: Opener) -> None:
    ghost = GhostRow("fake", "alice", "@_fake_alice:example.org", "Alice", "mxc://x/y", {"k": [1]})
    await (await open_store()).save_ghost(ghost)
    fresh = await open_store()
    assert await fresh.get_ghost("fake", "alice") == ghost
    assert await fresh.get_ghost("fake", "bob") is None
    assert await fresh.get_ghost("other", "alice") is None


async def test_saving_a_ghost_again_updates_its_profile(open_store: Opener) -> None:
    store = await open_store()
    await store.save_ghost(GhostRow("fake", "alice", "@_fake_alice:example.org", "Alice"))
    await store.save_ghost(
        GhostRow("fake", "alice", "@_fake_alice:example.org", "Alicia", "mxc://a/b")
    )
    fresh = await open_store()
    assert await fresh.get_ghost("fake", "alice") == GhostRow(
        "fake", "alice", "@_fake_alice:example.org", "Alicia", "mxc://a/b"
    )


# -- messages --------------------------------------------------------------------------------


async def test_message_round_trips_by_event_id(open_store: Opener) -> None:
    row = message()
    row.thread_root = "root1"
    await (await open_store()).add_message(row)
    fresh = await open_store()
    assert await fresh.message_by_event("$e1") == row


async def test_message_by_remote_returns_the_first_part_by_default(open_store: Opener) -> None:
    store = await open_store()
    await store.add_message(message("m1", part="1", event_id="$p1"))
    await store.add_message(message("m1", part="0", event_id="$p0"))
    await store.add_message(message("m1", part="2", event_id="$p2"))
    fresh = await open_store()
    assert (await fresh.message_by_remote("fake", PortalKey("chat"), "m1")).event_id == "$p0"


async def test_a_queued_mapping_is_found_by_remote_id_before_its_commit(store: Store) -> None:
    """A reaction from the network can follow our own line faster than the group commit."""
    chat = PortalKey("chat")
    store.add_message_soon(message("m1", event_id="$e1"), extra_ids=["m1b"])
    for remote_id in ("m1", "m1b"):  # not committed yet: found all the same
        assert (await store.message_by_remote("fake", chat, remote_id)).event_id == "$e1"
    assert await store.known_remote_ids("fake", chat, ["m1", "m1b", "other"]) == {"m1", "m1b"}
    await store.flush()
    assert store.messages._pending_by_remote == {}  # committed: the database answers from now on
    assert (await store.message_by_remote("fake", chat, "m1b")).event_id == "$e1"


async def test_message_by_remote_with_a_part_returns_that_part(store: Store) -> None:
    await store.add_message(message("m1", part="0", event_id="$p0"))
    await store.add_message(message("m1", part="1", event_id="$p1"))
    assert (await store.message_by_remote("fake", PortalKey("chat"), "m1", "1")).event_id == "$p1"
    assert await store.message_by_remote("fake", PortalKey("chat"), "m1", "9") is None


async def test_message_by_remote_is_scoped_to_network_and_portal(store: Store) -> None:
    await store.add_message(message("m1", event_id="$e1", portal=PortalKey("chat", "login1")))
    assert await store.message_by_remote("fake", PortalKey("chat"), "m1") is None
    assert await store.message_by_remote("other", PortalKey("chat", "login1"), "m1") is None
    assert await store.message_by_remote("fake", PortalKey("chat", "login1"), "m1") is not None


async def test_adding_the_same_message_twice_keeps_the_first(store: Store) -> None:
    await store.add_message(message("m1", event_id="$first"))
    await store.add_message(message("m1", event_id="$second"))
    assert (await store.message_by_remote("fake", PortalKey("chat"), "m1")).event_id == "$first"


async def test_last_message_is_the_newest_by_timestamp(store: Store) -> None:
    await store.add_message(message("old", event_id="$old", ts=1))
    await store.add_message(message("new", event_id="$new", ts=3))
    await store.add_message(message("mid", event_id="$mid", ts=2))
    assert (await store.last_message("fake", PortalKey("chat"))).event_id == "$new"
    assert await store.last_message("fake", PortalKey("empty")) is None


async def test_add_message_soon_is_visible_at_once_and_durable_after_flush(
    open_store: Opener,
) -> None:
    store = await open_store()
    store.add_message_soon(message("r-1", event_id="$soon"))
    assert (await store.message_by_event("$soon")).remote_id == "r-1"  # from the cache
    await store.flush()
    fresh = await open_store()
    assert (await fresh.message_by_remote("fake", PortalKey("chat"), "r-1")).event_id == "$soon"


async def test_concurrent_writes_share_group_commits(open_store: Opener) -> None:
    import asyncio

    store = await open_store()
    await asyncio.gather(
        *(store.add_message(message(f"g{i}", event_id=f"$g{i}", ts=i)) for i in range(50))
    )
    fresh = await open_store()
    for i in range(50):
        assert (await fresh.message_by_event(f"$g{i}")).remote_id == f"g{i}"


async def test_extra_remote_ids_find_the_same_event_after_a_restart(open_store: Opener) -> None:
    store = await open_store()
    await store.add_message(message("line-1", event_id="$merged"), ["line-2", "line-3"])
    fresh = await open_store()
    for remote_id in ("line-1", "line-2", "line-3"):
        found = await fresh.message_by_remote("fake", PortalKey("chat"), remote_id)
        assert found is not None and found.event_id == "$merged", remote_id
    assert await fresh.message_by_remote("fake", PortalKey("other"), "line-2") is None


async def test_known_remote_ids_finds_ids_and_aliases_of_this_portal_only(
    open_store: Opener,
) -> None:
    store = await open_store()
    await store.add_message(message("line-3", event_id="$merged"), ["line-1", "line-2"])
    await store.add_message(message("solo", event_id="$solo"))
    await store.add_message(message("elsewhere", event_id="$x", portal=PortalKey("other")))
    asked = ["line-1", "new-1", "solo", "line-3", "elsewhere", "", "new-2", "solo"]
    fresh = await open_store()
    assert await fresh.known_remote_ids("fake", PortalKey("chat"), asked) == {
        "line-1",
        "line-3",
        "solo",
    }
    assert await fresh.known_remote_ids("fake", PortalKey("other"), asked) == {"elsewhere"}
    assert await fresh.known_remote_ids("other-net", PortalKey("chat"), asked) == set()
    assert await fresh.known_remote_ids("fake", PortalKey("chat"), []) == set()


async def test_extra_remote_ids_go_with_their_message_and_portal(open_store: Opener) -> None:
    store = await open_store()
    portal = a_portal()
    await store.save_portal(portal)
    store.add_message_soon(message("a1", event_id="$a", portal=portal.key), ["a2"])
    await store.add_message(message("b1", event_id="$b", portal=portal.key), ["b2"])
    await store.delete_message("$a")
    assert await store.message_by_remote("fake", portal.key, "a2") is None
    assert (await store.message_by_remote("fake", portal.key, "b2")).event_id == "$b"
    await store.delete_portal(portal)
    assert await (await open_store()).message_by_remote("fake", portal.key, "b2") is None


async def test_delete_message_removes_it(open_store: Opener) -> None:
    store = await open_store()
    await store.add_message(message())
    await store.delete_message("$e1")
    assert await store.message_by_event("$e1") is None
    assert await (await open_store()).message_by_event("$e1") is None


# -- reactions -------------------------------------------------------------------------------


def reaction(portal: PortalKey = PortalKey("chat"), event_id: str = "$r1") -> ReactionRow:
    return ReactionRow(
        network="fake",
        portal=portal,
        target_id="m1",
        sender_remote="bob",
        key="👍",
        event_id=event_id,
        room_id="!room:example.org",
        remote_id="r-remote",
    )


async def test_reaction_round_trips_by_key_and_by_event(open_store: Opener) -> None:
    await (await open_store()).add_reaction(reaction())
    fresh = await open_store()
    assert await fresh.get_reaction("fake", PortalKey("chat"), "m1", "bob", "👍") == reaction()
    assert await fresh.reaction_by_event("$r1") == reaction()
    assert await fresh.get_reaction("fake", PortalKey("chat"), "m1", "bob", "👎") is None


async def test_delete_reaction_removes_it(store: Store) -> None:
    await store.add_reaction(reaction())
    await store.delete_reaction("$r1")
    assert await store.reaction_by_event("$r1") is None


# -- users and logins ------------------------------------------------------------------------


async def test_user_round_trips_and_updates(open_store: Opener) -> None:
    store = await open_store()
    await store.save_user(BridgeUser("@a:example.org", "!mgmt:example.org", None, {"x": 1}))
    await store.save_user(BridgeUser("@a:example.org", "!mgmt:example.org", "tok", {"x": 2}))
    fresh = await open_store()
    assert await fresh.get_user("@a:example.org") == BridgeUser(
        "@a:example.org", "!mgmt:example.org", "tok", {"x": 2}
    )
    assert await fresh.get_user("@nobody:example.org") is None
    assert await fresh.all_users() == [await fresh.get_user("@a:example.org")]


async def test_logins_round_trip_and_are_listed_per_user(open_store: Opener) -> None:
    store = await open_store()
    await store.save_user(BridgeUser("@a:example.org"))
    await store.save_user(BridgeUser("@b:example.org"))
    la = LoginInfo("la", "@a:example.org", "fake", "alice", "Alice", {"cookie": "c"})
    lb = LoginInfo("lb", "@b:example.org", "fake", "bob", "Bob")
    await store.save_login(la)
    await store.save_login(lb)
    fresh = await open_store()
    assert await fresh.logins("@a:example.org") == [la]
    assert sorted(await fresh.logins(), key=lambda login: login.id) == [la, lb]


async def test_saving_a_login_again_updates_its_name_and_metadata(store: Store) -> None:
    await store.save_user(BridgeUser("@a:example.org"))
    await store.save_login(LoginInfo("la", "@a:example.org", "fake", "alice", "Alice"))
    await store.save_login(LoginInfo("la", "@a:example.org", "fake", "alice", "Al", {"v": 2}))
    assert await store.logins() == [
        LoginInfo("la", "@a:example.org", "fake", "alice", "Al", {"v": 2})
    ]


async def test_delete_login_removes_only_that_login(store: Store) -> None:
    await store.save_user(BridgeUser("@a:example.org"))
    await store.save_login(LoginInfo("l1", "@a:example.org", "fake", "one"))
    await store.save_login(LoginInfo("l2", "@a:example.org", "fake", "two"))
    await store.delete_login("l1")
    assert [login.id for login in await store.logins()] == ["l2"]


# -- key/value -------------------------------------------------------------------------------


async def test_kv_round_trips_overwrites_and_deletes(open_store: Opener) -> None:
    store = await open_store()
    assert await store.get_kv("k") is None
    await store.set_kv("k", "v1")
    await store.set_kv("k", "v2")
    assert await (await open_store()).get_kv("k") == "v2"
    await store.set_kv("k", None)
    assert await (await open_store()).get_kv("k") is None


# -- values are data, never SQL --------------------------------------------------------------


async def test_sql_in_values_is_stored_and_read_back_verbatim(open_store: Opener) -> None:
    store = await open_store()
    portal = a_portal(key=PortalKey(NASTY, NASTY), mxid=NASTY, name=NASTY, topic=NASTY)
    await store.save_portal(portal)
    await store.save_ghost(GhostRow("fake", NASTY, "@_fake_x:example.org", NASTY))
    await store.add_message(message(NASTY, part=NASTY, event_id=NASTY, portal=PortalKey(NASTY)))
    await store.set_kv(NASTY, NASTY)
    assert await store.store_transaction((NASTY, NASTY), NASTY) == "new"

    fresh = await open_store()
    assert await fresh.get_portal("fake", PortalKey(NASTY, NASTY)) == portal
    assert await fresh.get_portal_by_mxid(NASTY) == portal
    assert (await fresh.get_ghost("fake", NASTY)).name == NASTY
    found = await fresh.message_by_remote("fake", PortalKey(NASTY), NASTY, NASTY)
    assert (found.remote_id, found.part, found.event_id) == (NASTY, NASTY, NASTY)
    assert await fresh.get_kv(NASTY) == NASTY
    assert await fresh.pending_transactions() == [((NASTY, NASTY), NASTY)]
    assert await fresh.db.table_exists("portal")


async def test_unicode_and_quotes_round_trip(store: Store) -> None:
    value = "ünïcødé 🎉 \"double\" 'single' \\ back\\slash \n newline \t tab"
    await store.set_kv(value, value)
    assert await store.get_kv(value) == value


async def test_a_message_in_parts_is_known_once_its_first_part_is_recorded(
    open_store: Opener,
) -> None:
    """message_parts.py records the first part last: until then an outbox replay finds the
    message incomplete (not an echo or a duplicate) and sends the parts it lacks."""
    store = await open_store()
    chat = PortalKey("chat")
    await store.add_message(message("m1", part="file-1", event_id="$f1"))
    assert await store.known_remote_ids("fake", chat, ["m1"]) == set()
    assert [r.part for r in await store.message_parts("fake", chat, "m1")] == ["file-1"]
    await store.add_message(message("m1", part="", event_id="$first"))
    fresh = await open_store()
    assert await fresh.known_remote_ids("fake", chat, ["m1"]) == {"m1"}
    parts = {r.part: r.event_id for r in await fresh.message_parts("fake", chat, "m1")}
    assert parts == {"": "$first", "file-1": "$f1"}
    assert (await fresh.message_by_remote("fake", chat, "m1")).event_id == "$first"
    assert await fresh.message_parts("fake", PortalKey("other"), "m1") == []


def test_the_store_methods_are_the_tables_own(store: Store) -> None:
    """The Store composes the table modules without a layer of its own on the hot paths:
    ``bridge.store.add_message_soon`` is the message table's method itself."""
    for name, table in [
        ("add_message_soon", store.messages),
        ("add_message", store.messages),
        ("message_by_remote", store.messages),
        ("known_remote_ids", store.messages),
        ("get_portal", store.portals),
        ("get_portal_by_mxid", store.portals),
        ("is_portal_room", store.portals),
        ("store_transaction", store.transactions),
        ("finish_transactions", store.transactions),
        ("outbox_add_many", store.outbox),
        ("outbox_done_later", store.outbox),
        ("set_kv_soon", store.kv),
    ]:
        method = getattr(store, name)
        assert method.__self__ is table, name
        assert method.__func__ is getattr(type(table), name), name
    assert store.messages._enqueue_write_nowait.__self__ is store.commit
    assert store.management_rooms is store.users.management_rooms


async def test_space_rows_round_trip(store: Store) -> None:
    """The space tables' SQL (database/spaces.py) on both engines."""
    spaces = store.spaces
    portal = PortalRow("fake", PortalKey("chat"), mxid="!p:hs")
    key = ("fake", "ws", "")
    await spaces.add_space(key, "Acme", None, None)
    await spaces.add_space(key, "Other", None, None)  # recorded already: kept as it was
    row = await spaces.get_space(key)
    assert row is not None and row.key == key and (row.name, row.mxid) == ("Acme", None)
    assert await spaces.get_space(("fake", "nope", "")) is None

    await spaces.add_child(portal, "ws", "")
    assert await spaces.children("fake", portal.key) == [("ws", "", False)]
    assert [(r["portal_id"], r["space_id"]) for r in await spaces.unlinked_children()] == [
        ("chat", "ws")
    ]
    await spaces.set_linked("fake", portal.key, "ws", "", True)
    assert await spaces.children("fake", portal.key) == [("ws", "", True)]
    assert await spaces.unlinked_children() == []
    await spaces.set_linked("fake", portal.key, "ws", "", False)
    assert await spaces.children("fake", portal.key) == [("ws", "", False)]

    await spaces.add_member(key, "@alice:hs")
    await spaces.add_member(key, "@alice:hs")
    assert await spaces.uninvited(key) == ["@alice:hs"]
    assert await spaces.spaces_with_uninvited() == []  # no room yet
    await spaces.set_mxid(key, "!s:hs")
    await spaces.set_column(key, "topic", NASTY)
    assert [r["mxid"] for r in await spaces.spaces_with_uninvited()] == ["!s:hs"]
    await spaces.mark_invited(key, "@alice:hs")
    assert await spaces.uninvited(key) == []
    row = await spaces.get_space(key)
    assert row is not None and (row.mxid, row.topic) == ("!s:hs", NASTY)
    with pytest.raises(ValueError):
        await spaces.set_column(key, "mxid", "!other:hs")

    await spaces.forget_child(portal, key)
    assert await spaces.children("fake", portal.key) == []


async def test_backfill_state_round_trip(store: Store) -> None:
    from bridgekit.database.backfill import BackfillState

    portal = PortalRow("fake", PortalKey("chat"))
    assert await store.backfill.get(portal) is None
    await store.backfill.save(portal, BackfillState(forward_anchor="m1", backward_more=True))
    await store.backfill.save(portal, BackfillState("m2", "c", None, False, True))
    assert await store.backfill.get(portal) == BackfillState("m2", "c", None, False, True)


async def test_the_newest_remote_message_counts_one_still_queued_for_the_commit(
    store: Store,
) -> None:
    """A catch-up anchored on the portal's newest remote message must not miss the one just
    bridged whose mapping is still in the group commit's queue (it would fetch it again)."""
    store.add_message_soon(message("m1", event_id="$e1"))  # queued, not awaited
    assert await store.last_remote_message("fake", PortalKey("chat")) == "m1"
