"""The ``portal`` table and its in-memory index (by key and by room id).

Every Matrix event asks "is this a portal room?", and every remote event "which portal is
this?": after :meth:`PortalTable.load` both are answered from memory, without SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mautrix.util.async_db import Database

from ..contract.events import PortalKey
from .records import PortalRow, portal_from_row


class PortalTable:
    """Portal rows (see the module docstring)."""

    def __init__(self, db: Database, make: Callable[..., PortalRow] = PortalRow) -> None:
        self.db = db
        #: Builds a portal from its fields (keyword arguments): the row class, or the
        #: runtime's object class (bridgekit.objects), so that the cache holds the one
        #: object of each portal.
        self.make = make
        self._portals: dict[tuple[str, PortalKey], PortalRow] = {}
        self._portals_by_mxid: dict[str, PortalRow] = {}
        #: Every row is in memory: a miss is an answer, not a reason to ask the database.
        self._loaded = False

    async def load(self) -> None:
        for row in await self.db.fetch("SELECT * FROM portal"):
            self._cache_portal(portal_from_row(row, self.make))
        self._loaded = True

    def is_portal_room(self, room_id: str) -> bool:
        return room_id in self._portals_by_mxid

    async def get_portal(self, network: str, key: PortalKey) -> PortalRow | None:
        cached = self._portals.get((network, key))
        if cached or self._loaded:
            return cached
        row = await self.db.fetchrow(
            "SELECT * FROM portal WHERE network=$1 AND remote_id=$2 AND receiver=$3",
            network,
            key.id,
            key.receiver,
        )
        return self._cache_portal(portal_from_row(row, self.make)) if row else None

    def new_portal(self, network: str, key: PortalKey) -> PortalRow:
        """A portal not stored yet (cached once :meth:`save_portal` has stored it)."""
        return self.make(network=network, key=key)

    async def get_portal_by_mxid(self, mxid: str) -> PortalRow | None:
        cached = self._portals_by_mxid.get(mxid)
        if cached and cached.mxid == mxid:  # not a room the portal has since moved away from
            return cached
        if self._loaded:
            return None
        row = await self.db.fetchrow("SELECT * FROM portal WHERE mxid=$1", mxid)
        return self._cache_portal(portal_from_row(row, self.make)) if row else None

    def _cache_portal(self, portal: PortalRow) -> PortalRow:
        existing = self._portals.get((portal.network, portal.key))
        if existing:
            return existing
        self._portals[(portal.network, portal.key)] = portal
        if portal.mxid:
            self._portals_by_mxid[portal.mxid] = portal
        return portal

    async def all_portals(self) -> list[PortalRow]:
        rows = await self.db.fetch("SELECT * FROM portal WHERE mxid IS NOT NULL")
        return [self._cache_portal(portal_from_row(r, self.make)) for r in rows]

    async def save_portal(self, portal: PortalRow) -> None:
        await self.db.execute(
            "INSERT INTO portal (network, remote_id, receiver, mxid, name, topic, avatar_url, "
            "is_dm, plumbed, relay_login, metadata) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
            "ON CONFLICT (network, remote_id, receiver) DO UPDATE SET mxid=excluded.mxid, "
            "name=excluded.name, topic=excluded.topic, avatar_url=excluded.avatar_url, "
            "is_dm=excluded.is_dm, plumbed=excluded.plumbed, relay_login=excluded.relay_login, "
            "metadata=excluded.metadata",
            portal.network,
            portal.key.id,
            portal.key.receiver,
            portal.mxid,
            portal.name,
            portal.topic,
            portal.avatar_url,
            portal.is_dm,
            portal.plumbed,
            portal.relay_login,
            json.dumps(portal.metadata),
        )
        for mxid, cached in list(self._portals_by_mxid.items()):
            if cached is portal and mxid != portal.mxid:
                del self._portals_by_mxid[mxid]  # the portal moved to another room
        self._portals[(portal.network, portal.key)] = portal
        if portal.mxid:
            self._portals_by_mxid[portal.mxid] = portal

    async def delete_row(self, conn: Any, portal: PortalRow) -> None:
        """Delete the portal's row in the caller's transaction (:meth:`Store.delete_portal`,
        which deletes its messages in the same one); :meth:`forget` once it is committed."""
        await conn.execute(
            "DELETE FROM portal WHERE network=$1 AND remote_id=$2 AND receiver=$3",
            portal.network,
            portal.key.id,
            portal.key.receiver,
        )

    def forget(self, portal: PortalRow) -> None:
        """Drop a deleted portal from the index."""
        self._portals.pop((portal.network, portal.key), None)
        if portal.mxid:
            self._portals_by_mxid.pop(portal.mxid, None)
