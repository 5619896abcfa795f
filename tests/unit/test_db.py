"""Schema management: versioned SQL files, engine-only blocks, refusing a newer schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mautrix.util.async_db import Database, Scheme

from bridgekit.database.db import (
    Migration,
    SchemaTooNewError,
    create_database,
    current_version,
    load_migrations,
    make_url,
    migrate,
    package_migrations,
)

RUNTIME_TABLES = [
    "portal",
    "ghost",
    "bridge_user",
    "user_login",
    "message",
    "message_alias",
    "reaction",
    "appservice_txn",
    "appservice_txn_done",
    "outbox",
    "kv",
    "space",
    "space_child",
    "space_member",
]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = create_database(db_url)
    await database.start()
    yield database
    await database.stop()


def sql_files(directory: Path, files: dict[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, sql in files.items():
        path = directory / name
        path.write_text(sql, encoding="utf-8")
        paths.append(path)
    return paths


# -- engine-only blocks ----------------------------------------------------------------------

ONLY_SQL = """CREATE TABLE t (
-- only: sqlite
    id INTEGER PRIMARY KEY AUTOINCREMENT,
-- end only
-- only: postgres
    id BIGSERIAL PRIMARY KEY,
-- end only
    v TEXT
);"""


def test_for_scheme_keeps_sqlite_block_only_on_sqlite() -> None:
    sql = Migration(1, "t", ONLY_SQL).for_scheme(Scheme.SQLITE)
    assert sql.splitlines() == [
        "CREATE TABLE t (",
        "    id INTEGER PRIMARY KEY AUTOINCREMENT,",
        "    v TEXT",
        ");",
    ]


def test_for_scheme_keeps_postgres_block_only_on_postgres() -> None:
    sql = Migration(1, "t", ONLY_SQL).for_scheme(Scheme.POSTGRES)
    assert sql.splitlines() == [
        "CREATE TABLE t (",
        "    id BIGSERIAL PRIMARY KEY,",
        "    v TEXT",
        ");",
    ]


def test_for_scheme_markers_are_case_and_space_insensitive() -> None:
    sql = "a\n  --   ONLY: Postgres  \nb\n--END ONLY\nc"
    assert Migration(1, "t", sql).for_scheme(Scheme.SQLITE).splitlines() == ["a", "c"]
    assert Migration(1, "t", sql).for_scheme(Scheme.POSTGRES).splitlines() == ["a", "b", "c"]


def test_for_scheme_leaves_sql_without_blocks_unchanged() -> None:
    sql = "-- a comment\nCREATE TABLE x (a TEXT);\nCREATE INDEX y ON x (a);"
    assert Migration(1, "t", sql).for_scheme(Scheme.SQLITE) == sql
    assert Migration(1, "t", sql).for_scheme(Scheme.POSTGRES) == sql


# -- finding migration files -----------------------------------------------------------------


def test_package_migrations_finds_the_runtime_schema() -> None:
    migrations = package_migrations("bridgekit.database.migrations")
    assert [(m.version, m.name) for m in migrations][:2] == [(1, "initial"), (2, "message_alias")]
    assert "CREATE TABLE portal" in migrations[0].sql


def test_package_migrations_of_a_missing_package_is_empty() -> None:
    assert package_migrations("bridgekit_no_such_package.migrations") == []


def test_load_migrations_orders_by_number_not_by_name(tmp_path: Path) -> None:
    files = sql_files(tmp_path, {f"{n}_step{n}.sql": f"-- {n}" for n in range(1, 12)})
    migrations = load_migrations(sorted(files, key=lambda p: p.name))  # "10_" sorts before "2_"
    assert [m.version for m in migrations] == list(range(1, 12))
    assert [m.name for m in migrations] == [f"step{n}" for n in range(1, 12)]


def test_load_migrations_ignores_files_not_named_like_migrations(tmp_path: Path) -> None:
    files = sql_files(
        tmp_path, {"001_initial.sql": "-- 1", "README.md": "x", "notes.sql": "x", "2.sql": "x"}
    )
    assert [m.name for m in load_migrations(files)] == ["initial"]


def test_load_migrations_rejects_a_gap_in_numbering(tmp_path: Path) -> None:
    files = sql_files(tmp_path, {"001_a.sql": "", "002_b.sql": "", "004_d.sql": ""})
    with pytest.raises(ValueError, match="without gaps"):
        load_migrations(files)


def test_load_migrations_rejects_numbering_that_does_not_start_at_1(tmp_path: Path) -> None:
    files = sql_files(tmp_path, {"002_b.sql": "", "003_c.sql": ""})
    with pytest.raises(ValueError, match="without gaps"):
        load_migrations(files)


def test_load_migrations_rejects_two_files_with_the_same_number(tmp_path: Path) -> None:
    files = sql_files(tmp_path, {"001_a.sql": "", "001_b.sql": ""})
    with pytest.raises(ValueError, match="without gaps"):
        load_migrations(files)


# -- database URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///rel.db", "sqlite:rel.db"),
        ("sqlite:///dir/rel.db", "sqlite:dir/rel.db"),
        ("sqlite:////abs.db", "sqlite:/abs.db"),
        ("sqlite:////var/lib/bridgekit/abs.db", "sqlite:/var/lib/bridgekit/abs.db"),
        ("sqlite3:///rel.db", "sqlite:rel.db"),
        ("postgresql://u:p@h:5432/d", "postgres://u:p@h:5432/d"),
        ("postgres://u:p@h/d", "postgres://u:p@h/d"),
    ],
)
def test_make_url_maps_sqlalchemy_style_urls(url: str, expected: str) -> None:
    assert make_url(url) == expected


async def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = create_database("sqlite:///sub_rel.db")
    await database.start()
    try:
        await database.execute("CREATE TABLE x (a TEXT)")
    finally:
        await database.stop()
    assert (tmp_path / "sub_rel.db").is_file()


async def test_absolute_sqlite_url_is_used_as_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path_factory.mktemp("abs") / "abs.db"
    database = create_database(f"sqlite:///{target}")  # four slashes: target is absolute
    await database.start()
    try:
        await database.execute("CREATE TABLE x (a TEXT)")
    finally:
        await database.stop()
    assert target.is_file()
    assert not (tmp_path / target.relative_to("/")).exists()


# -- applying migrations (both engines) ------------------------------------------------------


async def test_runtime_migrations_apply_to_a_fresh_database(db: Database) -> None:
    assert await current_version(db, "bridgekit") == 0
    latest = package_migrations("bridgekit.database.migrations")[-1].version
    assert (
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        == latest
    )
    for table in RUNTIME_TABLES:
        assert await db.table_exists(table), table
    assert await current_version(db, "bridgekit") == latest


async def test_runtime_migrations_applied_twice_are_a_no_op(db: Database) -> None:
    migrations = package_migrations("bridgekit.database.migrations")
    await migrate(db, "bridgekit", migrations)
    await db.execute("INSERT INTO kv (key, value) VALUES ('k', 'v')")
    assert await migrate(db, "bridgekit", migrations) == migrations[-1].version
    assert await db.fetchval("SELECT value FROM kv WHERE key='k'") == "v"


async def test_each_schema_has_its_own_version(db: Database, tmp_path: Path) -> None:
    await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations")[:1])
    files = sql_files(
        tmp_path,
        {
            "001_a.sql": "CREATE TABLE conn_a (x TEXT);",
            "002_b.sql": "CREATE TABLE conn_b (y TEXT);",
        },
    )
    assert await migrate(db, "myconn", load_migrations(files)) == 2
    assert await current_version(db, "bridgekit") == 1
    assert await db.table_exists("conn_a")
    assert await db.table_exists("conn_b")


async def test_only_the_pending_migrations_are_applied(db: Database, tmp_path: Path) -> None:
    first = sql_files(tmp_path / "v1", {"001_a.sql": "CREATE TABLE t (x TEXT);"})
    assert await migrate(db, "conn", load_migrations(first)) == 1
    await db.execute("INSERT INTO t (x) VALUES ('kept')")
    both = sql_files(
        tmp_path / "v2",
        {"001_a.sql": "CREATE TABLE t (x TEXT);", "002_b.sql": "ALTER TABLE t ADD COLUMN y TEXT;"},
    )
    assert await migrate(db, "conn", load_migrations(both)) == 2
    row = await db.fetchrow("SELECT x, y FROM t")
    assert (row["x"], row["y"]) == ("kept", None)


async def test_engine_only_blocks_are_honoured_when_migrating(db: Database, tmp_path: Path) -> None:
    files = sql_files(
        tmp_path,
        {
            "001_only.sql": (
                "CREATE TABLE engine_marker (\n"
                "-- only: sqlite\n"
                "    on_sqlite TEXT\n"
                "-- end only\n"
                "-- only: postgres\n"
                "    on_postgres TEXT\n"
                "-- end only\n"
                ");\n"
            )
        },
    )
    await migrate(db, "conn", load_migrations(files))
    expected = "on_sqlite" if db.scheme == Scheme.SQLITE else "on_postgres"
    other = "on_postgres" if db.scheme == Scheme.SQLITE else "on_sqlite"
    await db.execute(f"INSERT INTO engine_marker ({expected}) VALUES ('yes')")
    assert await db.fetchval(f"SELECT {expected} FROM engine_marker") == "yes"
    with pytest.raises(Exception, match=other):
        await db.fetchval(f"SELECT {other} FROM engine_marker")


async def test_a_failing_migration_leaves_the_version_unchanged(
    db: Database, tmp_path: Path
) -> None:
    files = sql_files(tmp_path, {"001_a.sql": "CREATE TABLE ok (x TEXT);\nNOT VALID SQL;\n"})
    with pytest.raises(Exception):  # noqa: B017 - the engine's own syntax error
        await migrate(db, "conn", load_migrations(files))
    assert await current_version(db, "conn") == 0
    assert not await db.table_exists("ok")


async def test_database_with_a_newer_schema_is_refused(db: Database) -> None:
    await db.execute("CREATE TABLE bridgekit_version (version INTEGER PRIMARY KEY)")
    await db.execute("INSERT INTO bridgekit_version (version) VALUES (99)")
    with pytest.raises(SchemaTooNewError) as info:
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
    assert "v99" in str(info.value)
    assert f"v{package_migrations('bridgekit.database.migrations')[-1].version}" in str(info.value)
    assert not await db.table_exists("portal")
    assert await current_version(db, "bridgekit") == 99
