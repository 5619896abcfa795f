"""Provide a PostgreSQL server for tests: an external one (env) or a private throwaway cluster."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import glob
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bridgekit.testing.ports import free_port

T = TypeVar("T")
ENV_DSN = "BRIDGEKIT_TEST_POSTGRES"
_lock = threading.Lock()
_dsn: str | None = None


class PostgresUnavailable(RuntimeError):
    """Neither BRIDGEKIT_TEST_POSTGRES nor local PostgreSQL binaries could provide a server."""


def _bin_dir() -> Path | None:
    """Directory holding initdb/pg_ctl, or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def postgres_available() -> bool:
    """True if ensure_postgres() can be expected to work (env DSN set or initdb present)."""
    return bool(os.environ.get(ENV_DSN)) or _bin_dir() is not None


def _run_sync(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async callable in a private loop on a worker thread (safe inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


async def _select_one(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


def _reachable(dsn: str) -> bool:
    try:
        return _run_sync(lambda: _select_one(dsn))
    except Exception:
        return False


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """Prefix a command so it runs as the `postgres` system user when we are root."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", subprocess.list2cmdline(cmd)]


def _start_private_cluster() -> str:
    bindir = _bin_dir()
    if bindir is None:
        raise PostgresUnavailable(f"no initdb found and {ENV_DSN} not set")
    root = Path(tempfile.mkdtemp(prefix="bridgekit-pg-"))
    data = root / "data"
    log = root / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    port = free_port()

    def run(cmd: list[str], timeout: float = 120) -> None:
        res = subprocess.run(
            _as_postgres_user(cmd), capture_output=True, text=True, timeout=timeout, cwd=root
        )
        if res.returncode != 0:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{tail}"
            )

    run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ]
    )
    with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(
            f"\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
            f"unix_socket_directories = '{root}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 200\n"
        )

    def stop() -> None:
        subprocess.run(
            _as_postgres_user(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)

    run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"])
    atexit.register(stop)
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def ensure_postgres() -> str:
    """Return the DSN of a running PostgreSQL server (started once per process if needed)."""
    global _dsn
    with _lock:
        if _dsn is not None:
            return _dsn
        env = os.environ.get(ENV_DSN)
        if env and _reachable(env):
            _dsn = env
        else:
            _dsn = _start_private_cluster()
        return _dsn


def _with_database(dsn: str, dbname: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", parts.query, parts.fragment))


async def create_database(dsn: str) -> str:
    """Create a fresh uniquely named database on the server of `dsn` and return its DSN."""
    name = f"bridgekit_test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(dsn, name)


async def drop_database(dsn: str) -> None:
    """Drop the database named in `dsn` (terminating its connections)."""
    name = urlsplit(dsn).path.lstrip("/")
    if not name or name == "postgres":
        raise ValueError(f"refusing to drop {name!r}")
    conn = await asyncpg.connect(_with_database(dsn, "postgres"), timeout=10)
    try:
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except asyncpg.PostgresSyntaxError:  # PostgreSQL < 13
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()
