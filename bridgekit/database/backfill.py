"""The ``backfill_state`` table: how far each portal's history was fetched, in each direction
(the logic is :mod:`bridgekit.portal.backfill`)."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database

from .records import PortalRow, now_ms


@dataclass
class BackfillState:
    """One ``backfill_state`` row (see bridgekit/database/migrations/006_backfill.sql)."""

    forward_anchor: str | None = None
    forward_cursor: str | None = None
    backward_cursor: str | None = None
    backward_more: bool = False
    initial_done: bool = False


class BackfillTable:
    """Backfill progress rows (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, portal: PortalRow) -> BackfillState | None:
        row = await self.db.fetchrow(
            "SELECT forward_anchor, forward_cursor, backward_cursor, backward_more, initial_done "
            "FROM backfill_state WHERE network=$1 AND portal_id=$2 AND receiver=$3",
            portal.network,
            portal.key.id,
            portal.key.receiver,
        )
        if row is None:
            return None
        return BackfillState(
            forward_anchor=row["forward_anchor"],
            forward_cursor=row["forward_cursor"],
            backward_cursor=row["backward_cursor"],
            backward_more=bool(row["backward_more"]),
            initial_done=bool(row["initial_done"]),
        )

    async def save(self, portal: PortalRow, state: BackfillState) -> None:
        await self.db.execute(
            "INSERT INTO backfill_state (network, portal_id, receiver, forward_anchor, "
            "forward_cursor, backward_cursor, backward_more, initial_done, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (network, portal_id, receiver) DO UPDATE SET "
            "forward_anchor=excluded.forward_anchor, forward_cursor=excluded.forward_cursor, "
            "backward_cursor=excluded.backward_cursor, backward_more=excluded.backward_more, "
            "initial_done=excluded.initial_done, updated_at=excluded.updated_at",
            portal.network,
            portal.key.id,
            portal.key.receiver,
            state.forward_anchor,
            state.forward_cursor,
            state.backward_cursor,
            state.backward_more,
            state.initial_done,
            now_ms(),
        )
