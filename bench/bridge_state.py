"""What bench/slack.py and bench/discord.py set up in the bridge and watch it make (each had
its own copy): the login stored before the bridge starts, and the portals it makes rooms for
as the remote user speaks in channels, which the Matrix user joins as it is invited."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from irc_sides import now  # noqa: E402


async def store_login(
    db_url: str, login: Any, then: Callable[[Any], Awaitable[None]] | None = None
) -> str:
    """Store ``login`` (a ``LoginInfo``) and its Matrix user in a new bridge database, as the
    login command does (the bridge loads it at start); ``then(db)`` adds what the network's
    commands store besides. Returns the login's id."""
    from bridgekit.database.db import create_database, migrate, package_migrations
    from bridgekit.database.store import BridgeUser, Store

    db = create_database(db_url)
    await db.start()
    try:
        await migrate(db, "bridgekit", package_migrations("bridgekit.database.migrations"))
        store = Store(db)
        await store.save_user(BridgeUser(login.user_mxid))
        await store.save_login(login)
        if then is not None:
            await then(db)
    finally:
        await db.stop()
    return str(login.id)


def portal_count(db_path: Path, network: str) -> int:
    """``network``'s portals with a room, read from the bridge's SQLite file (read-only)."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        row = con.execute(
            "SELECT count(*) FROM portal WHERE network = ? AND mxid IS NOT NULL", (network,)
        ).fetchone()
        return int(row[0])
    finally:
        con.close()


async def wait_portals(
    db_path: Path, network: str, target: int, stall: float = 60
) -> tuple[int, float]:
    """Until ``target`` portals have rooms, or none was added for ``stall`` s."""
    start = last_change = now()
    last = -1
    while True:
        count = await asyncio.to_thread(portal_count, db_path, network)
        if count != last:
            last, last_change = count, now()
        if count >= target or now() - last_change > stall:
            return count, now() - start
        await asyncio.sleep(0.5)


async def join_invites(user: Any, count: int, timeout: float = 300) -> list[str]:
    """``user`` joins the next ``count`` rooms it is invited to (the portals the bridge makes
    as someone speaks in their channels). Returns the room ids in the order the invites came."""
    rooms: list[str] = []
    deadline = now() + timeout
    while len(rooms) < count:
        room_id, _ = await user.wait_for_invite(timeout=max(deadline - now(), 1))
        await user.join(room_id)
        rooms.append(room_id)
    return rooms
