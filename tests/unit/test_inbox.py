"""The transaction inbox: a SQLite file of its own (database/inbox.py), "finished" marks in
the main database, settling and pruning (database/transactions.py), the upgrade move."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from mautrix.util.async_db import Database

from bridgekit.database import transactions as txn_table
from bridgekit.database.db import create_database, migrate, package_migrations
from bridgekit.database.inbox import inbox_url, move_from_main, open_inbox
from bridgekit.database.store import Store
from tests.conftest import DB_ENGINE

Opener = Callable[[], Awaitable[Store]]


def k(txn_id: str, digest: str = "d") -> tuple[str, str]:
    return (txn_id, digest)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/bridge.db", "sqlite:data/bridge.inbox.db"),
        ("sqlite:////var/lib/bk/bridge.db", "sqlite:/var/lib/bk/bridge.inbox.db"),
        ("sqlite:bridge.sqlite3", "sqlite:bridge.inbox.sqlite3"),
        ("sqlite:///bridge", "sqlite:bridge.inbox"),
        ("sqlite:///:memory:", None),
        ("postgres://u@localhost/bk", None),
        ("postgresql://u:pw@localhost/bk", None),
    ],
)
def test_the_inbox_file_sits_beside_the_database(url: str, expected: str | None) -> None:
    assert inbox_url(url) == expected


@pytest.fixture(params=["one database", "inbox file"])
async def open_store(request: pytest.FixtureRequest, db_url: str) -> AsyncIterator[Opener]:
    """A Store whose transactions are in the main database (PostgreSQL's way) or in an inbox
    file of their own (SQLite's); each call is a fresh process's view (a restart)."""
    split = request.param == "inbox file"
    if split and DB_ENGINE != "sqlite":
        pytest.skip("the inbox file is SQLite's")
    opened: list[Database] = []

    async def opener() -> Store:
        db = create_database(db_url)
        await db.start()
        opened.append(db)
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        if not split:
            return Store(db)
        url = inbox_url(db_url)
        assert url is not None
        inbox = create_database(url)
        opened.append(inbox)
        await open_inbox(inbox, url, db)
        store = Store(db, inbox)
        store.attach_loop_connection()
        return store

    yield opener
    for db in reversed(opened):
        await Store(db).detach_loop_connection()
        await db.stop()


async def marks(store: Store) -> set[tuple[str, str]]:
    rows = await store.db.fetch("SELECT txn_id, digest FROM appservice_txn_done")
    return {(r["txn_id"], r["digest"]) for r in rows}


async def bodies(store: Store) -> dict[tuple[str, str], str | None]:
    rows = await store.txn_db.fetch("SELECT txn_id, digest, body FROM appservice_txn")
    return {(r["txn_id"], r["digest"]): r["body"] for r in rows}


async def test_a_finished_transaction_is_a_mark_in_the_main_database(
    open_store: Opener,
) -> None:
    store = await open_store()
    await store.store_transaction(k("t1"), "one")
    await store.store_transaction(k("t2"), "two")
    await store.finish_transactions([k("t1")])
    assert await marks(store) == {k("t1")}
    assert (await bodies(store))[k("t1")] == "one"  # not settled yet: the body is still there
    restarted = await open_store()
    assert await restarted.pending_transactions() == [(k("t2"), "two")]


async def test_settling_clears_the_finished_bodies_then_forgets_the_marks(
    open_store: Opener,
) -> None:
    store = await open_store()
    for t in ("t1", "t2", "t3"):
        await store.store_transaction(k(t), t)
    await store.finish_transactions([k("t1"), k("t3")])
    assert await store.settle_transactions() == 2
    assert await marks(store) == set()
    assert await bodies(store) == {k("t1"): None, k("t2"): "t2", k("t3"): None}
    assert await store.pending_transactions() == [(k("t2"), "t2")]
    assert await store.settle_transactions() == 0
    # Still known: a retry of a settled transaction is recognised.
    assert await store.store_transaction(k("t1"), "t1") == "retry"


async def test_settling_many_marks_takes_several_chunks(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(txn_table, "SETTLE_CHUNK", 3)
    store = await open_store()
    keys = [k(f"t{i}") for i in range(8)]
    for key in keys:
        await store.store_transaction(key, "b")
    await store.finish_transactions(keys[:7])
    assert await store.settle_transactions() == 7
    assert await store.pending_transactions() == [(keys[7], "b")]
    assert await marks(store) == set()


async def test_a_crash_between_the_two_steps_of_a_settle_is_harmless(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bodies were cleared but the marks not deleted: nothing is pending, and the next
    settle deletes the marks."""
    store = await open_store()
    await store.store_transaction(k("t1"), "one")
    await store.store_transaction(k("t2"), "two")
    await store.finish_transactions([k("t1")])
    real = txn_table._executemany

    async def crash_on_the_marks(db: Database, sqlite: bool, query: str, rows: object) -> None:
        if "appservice_txn_done" in query:
            raise OSError("killed")
        await real(db, sqlite, query, rows)

    monkeypatch.setattr(txn_table, "_executemany", crash_on_the_marks)
    with pytest.raises(OSError, match="killed"):
        await store.settle_transactions()
    monkeypatch.undo()
    restarted = await open_store()
    assert await marks(restarted) == {k("t1")}
    assert (await bodies(restarted))[k("t1")] is None
    assert await restarted.pending_transactions() == [(k("t2"), "two")]
    assert await restarted.settle_transactions() == 1
    assert await marks(restarted) == set()
    assert await restarted.pending_transactions() == [(k("t2"), "two")]


async def test_a_failed_group_commit_leaves_no_mark_and_the_transaction_replayable(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await open_store()
    await store.store_transaction(k("t1"), "one")

    async def refuse(groups: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.commit, "_commit_groups", refuse)
    with pytest.raises(OSError, match="disk full"):
        await store.finish_transactions([k("t1")])
    restarted = await open_store()
    await restarted.settle_transactions()
    assert await restarted.pending_transactions() == [(k("t1"), "one")]


async def test_a_reused_id_is_pending_until_its_own_key_is_marked(open_store: Opener) -> None:
    store = await open_store()
    await store.store_transaction(k("1", "old"), "old")
    await store.finish_transactions([k("1", "old")])
    assert await store.store_transaction(k("1", "new"), "new") == "reused"
    assert await store.pending_transactions() == [(k("1", "new"), "new")]
    await store.settle_transactions()
    assert await store.store_transaction(k("1", "old"), "old") == "retry"
    assert await store.pending_transactions() == [(k("1", "new"), "new")]


async def test_prune_settles_first_and_forgets_only_old_finished_transactions(
    open_store: Opener,
) -> None:
    store = await open_store()
    for t in ("done", "open", "recent"):
        await store.store_transaction(k(t), t)
    await store.finish_transactions([k("done"), k("recent")])
    await store.prune_transactions(older_than_ms=-60_000)  # everything is "old"
    assert await marks(store) == set()
    assert await bodies(store) == {k("open"): "open"}
    assert await store.pending_transactions() == [(k("open"), "open")]
    assert await store.store_transaction(k("done"), "done") == "new"


# -- the upgrade from one file (SQLite) ------------------------------------------------------


@pytest.fixture
def sqlite_only() -> None:
    if DB_ENGINE != "sqlite":
        pytest.skip("the inbox file is SQLite's")


async def test_transactions_stored_in_the_main_file_move_to_the_inbox_once(
    sqlite_only: None, db_url: str, tmp_path: Path
) -> None:
    """A database written before the inbox file: its pending transaction is replayed after
    the upgrade and its finished one still recognises a retry; the main file keeps none."""
    old = create_database(db_url)
    await old.start()
    await migrate(old, "bridgekit", package_migrations("bridgekit.database.migrations")[:7])
    for txn_id, body in (("p", '{"events":[1]}'), ("f", None)):
        await old.execute(
            "INSERT INTO appservice_txn (txn_id, digest, body, received_at) "
            "VALUES ($1, 'd', $2, 1)",
            txn_id,
            body,
        )
    await old.stop()

    url = inbox_url(db_url)
    assert url is not None
    inbox_path = tmp_path / "bridgekit.inbox.db"
    assert not inbox_path.exists()
    db, inbox = create_database(db_url), create_database(url)
    await db.start()
    try:
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        await open_inbox(inbox, url, db)
        assert inbox_path.exists()
        store = Store(db, inbox)
        assert await db.fetchval("SELECT count(*) FROM appservice_txn") == 0
        assert await store.pending_transactions() == [(k("p"), '{"events":[1]}')]
        assert await store.store_transaction(k("f"), "{}") == "retry"
        assert await move_from_main(db, inbox) == 0  # once
    finally:
        await inbox.stop()
        await db.stop()
    with sqlite3.connect(inbox_path) as c:
        assert c.execute("SELECT txn_id, body FROM appservice_txn ORDER BY txn_id").fetchall() == [
            ("f", None),
            ("p", '{"events":[1]}'),
        ]


async def test_a_crash_during_the_move_copies_again_without_harm(
    sqlite_only: None, db_url: str
) -> None:
    """Copied to the inbox but not yet deleted from the main file: the next start copies
    again (the inbox's rows win) and then deletes."""
    url = inbox_url(db_url)
    assert url is not None
    db, inbox = create_database(db_url), create_database(url)
    await db.start()
    try:
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        await open_inbox(inbox, url, db)
        store = Store(db, inbox)
        await store.store_transaction(k("t1"), "one")
        await store.finish_transactions([k("t1")])
        await store.settle_transactions()
        # As if the move had copied t1 and t2 and died before deleting them from the main file.
        for txn_id, body in (("t1", "one"), ("t2", "two")):
            await db.execute(
                "INSERT INTO appservice_txn (txn_id, digest, body, received_at) "
                "VALUES ($1, 'd', $2, 1)",
                txn_id,
                body,
            )
        await inbox.execute(
            "INSERT INTO appservice_txn (txn_id, digest, body, received_at) "
            "VALUES ('t2', 'd', 'two', 1)"
        )
        assert await move_from_main(db, inbox) == 2
        assert await db.fetchval("SELECT count(*) FROM appservice_txn") == 0
        assert await store.pending_transactions() == [(k("t2"), "two")]
    finally:
        await inbox.stop()
        await db.stop()
