"""The ``ghost`` table (the Matrix users that stand for remote users), cached in memory, and the
``avatar`` table (which image was uploaded as which mxc:// URI, so it is uploaded once)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from mautrix.util.async_db import Database

from .records import GhostRow, ghost_from_row


class GhostTable:
    """Ghost and avatar rows (see the module docstring)."""

    def __init__(self, db: Database, make: Callable[..., GhostRow] = GhostRow) -> None:
        self.db = db
        #: Builds a ghost from its fields (see :attr:`PortalTable.make`).
        self.make = make
        self._ghosts: dict[tuple[str, str], GhostRow] = {}

    async def get_ghost(self, network: str, remote_id: str) -> GhostRow | None:
        cached = self._ghosts.get((network, remote_id))
        if cached:
            return cached
        row = await self.db.fetchrow(
            "SELECT * FROM ghost WHERE network=$1 AND remote_id=$2", network, remote_id
        )
        if not row:
            return None
        # setdefault: a lookup that raced this one may have cached the ghost first (one object).
        return self._ghosts.setdefault((network, remote_id), ghost_from_row(row, self.make))

    def new_ghost(self, network: str, remote_id: str, mxid: str) -> GhostRow:
        """A ghost not stored yet (cached once :meth:`save_ghost` has stored it)."""
        return self.make(network=network, remote_id=remote_id, mxid=mxid)

    async def save_ghost(self, ghost: GhostRow) -> None:
        await self.db.execute(
            "INSERT INTO ghost (network, remote_id, mxid, name, avatar_url, metadata, is_bot) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (network, remote_id) DO UPDATE SET "
            "name=excluded.name, avatar_url=excluded.avatar_url, metadata=excluded.metadata, "
            "is_bot=excluded.is_bot",
            ghost.network,
            ghost.remote_id,
            ghost.mxid,
            ghost.name,
            ghost.avatar_url,
            json.dumps(ghost.metadata),
            ghost.is_bot,
        )
        self._ghosts[(ghost.network, ghost.remote_id)] = ghost

    async def get_avatar(self, digest: str) -> str | None:
        """The mxc:// URI an image with this SHA-256 was uploaded as, if it was."""
        return await self.db.fetchval("SELECT mxc FROM avatar WHERE hash=$1", digest)

    async def save_avatar(self, digest: str, mxc: str) -> None:
        await self.db.execute(
            "INSERT INTO avatar (hash, mxc, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (hash) DO NOTHING",
            digest,
            mxc,
            int(time.time() * 1000),
        )
