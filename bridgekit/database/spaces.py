"""The ``space``, ``space_child`` and ``space_member`` tables: the space rooms a network's
containers (and logins, with personal spaces) became, which portals each lists, and which users
are to be invited. The logic that keeps the rooms in step is :mod:`bridgekit.portal.spaces`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mautrix.util.async_db import Database

from ..contract.events import PortalKey
from .records import PortalRow

#: (network, container id, receiver)
SpaceKey = tuple[str, str, str]


@dataclass
class SpaceRow:
    network: str
    space_id: str
    receiver: str
    mxid: str | None
    name: str | None
    topic: str | None
    avatar_url: str | None

    @property
    def key(self) -> SpaceKey:
        return (self.network, self.space_id, self.receiver)


#: The columns of ``space`` that follow the network (:meth:`SpaceTable.set_column`).
_COLUMNS = frozenset({"name", "topic", "avatar_url"})


class SpaceTable:
    """Space rows (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- space ---------------------------------------------------------------------------------

    async def add_space(
        self, key: SpaceKey, name: str | None, topic: str | None, avatar_url: str | None
    ) -> None:
        """Record a space (no room yet) unless it is recorded already."""
        await self.db.execute(
            "INSERT INTO space (network, space_id, receiver, name, topic, avatar_url) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (network, space_id, receiver) "
            "DO NOTHING",
            *key,
            name,
            topic,
            avatar_url,
        )

    async def get_space(self, key: SpaceKey) -> SpaceRow | None:
        row = await self.db.fetchrow(
            "SELECT * FROM space WHERE network=$1 AND space_id=$2 AND receiver=$3", *key
        )
        if row is None:
            return None
        return SpaceRow(
            row["network"],
            row["space_id"],
            row["receiver"],
            row["mxid"],
            row["name"],
            row["topic"],
            row["avatar_url"],
        )

    async def set_mxid(self, key: SpaceKey, mxid: str) -> None:
        await self.db.execute(
            "UPDATE space SET mxid=$4 WHERE network=$1 AND space_id=$2 AND receiver=$3",
            *key,
            mxid,
        )

    async def set_column(self, key: SpaceKey, column: str, value: str | None) -> None:
        """Set the space's ``name``, ``topic`` or ``avatar_url`` (nothing else)."""
        if column not in _COLUMNS:  # the name goes into the SQL text
            raise ValueError(f"not a space column: {column!r}")
        await self.db.execute(
            f"UPDATE space SET {column}=$4 WHERE network=$1 AND space_id=$2 AND receiver=$3",
            *key,
            value,
        )

    # -- space_child ---------------------------------------------------------------------------

    async def add_child(self, portal: PortalRow, space_id: str, space_receiver: str) -> None:
        """Record that the portal belongs to the space (not linked yet)."""
        await self.db.execute(
            "INSERT INTO space_child (network, portal_id, receiver, space_id, space_receiver, "
            "linked) VALUES ($1, $2, $3, $4, $5, false) ON CONFLICT DO NOTHING",
            portal.network,
            portal.key.id,
            portal.key.receiver,
            space_id,
            space_receiver,
        )

    async def forget_child(self, portal: PortalRow, space: SpaceKey) -> None:
        await self.db.execute(
            "DELETE FROM space_child WHERE network=$1 AND portal_id=$2 AND receiver=$3 "
            "AND space_id=$4 AND space_receiver=$5",
            portal.network,
            portal.key.id,
            portal.key.receiver,
            space[1],
            space[2],
        )

    async def children(self, network: str, key: PortalKey) -> list[tuple[str, str, bool]]:
        """Every space row of the portal: (space id, space receiver, linked)."""
        rows = await self.db.fetch(
            "SELECT space_id, space_receiver, linked FROM space_child "
            "WHERE network=$1 AND portal_id=$2 AND receiver=$3",
            network,
            key.id,
            key.receiver,
        )
        return [(r["space_id"], r["space_receiver"], bool(r["linked"])) for r in rows]

    async def set_linked(
        self, network: str, key: PortalKey, space_id: str, space_receiver: str, linked: bool
    ) -> None:
        """Mark whether the portal is listed in the space's room (and it names the space)."""
        value = "true" if linked else "false"  # a literal: both engines read it as a boolean
        await self.db.execute(
            f"UPDATE space_child SET linked={value} WHERE network=$1 AND portal_id=$2 "
            "AND receiver=$3 AND space_id=$4 AND space_receiver=$5",
            network,
            key.id,
            key.receiver,
            space_id,
            space_receiver,
        )

    async def unlinked_children(self) -> list[Any]:
        """Rows (network, portal_id, receiver, space_id, space_receiver) not linked yet."""
        return await self.db.fetch(
            "SELECT network, portal_id, receiver, space_id, space_receiver FROM space_child "
            "WHERE linked=false"
        )

    # -- space_member --------------------------------------------------------------------------

    async def add_member(self, key: SpaceKey, user_mxid: str) -> None:
        """Record that the user is to be invited to the space (unless recorded already)."""
        await self.db.execute(
            "INSERT INTO space_member (network, space_id, receiver, user_mxid, invited) "
            "VALUES ($1, $2, $3, $4, false) ON CONFLICT DO NOTHING",
            *key,
            user_mxid,
        )

    async def uninvited(self, key: SpaceKey) -> list[str]:
        """The users of the space who were not invited yet."""
        rows = await self.db.fetch(
            "SELECT user_mxid FROM space_member WHERE network=$1 AND space_id=$2 "
            "AND receiver=$3 AND invited=false",
            *key,
        )
        return [row["user_mxid"] for row in rows]

    async def mark_invited(self, key: SpaceKey, user_mxid: str) -> None:
        await self.db.execute(
            "UPDATE space_member SET invited=true WHERE network=$1 AND space_id=$2 "
            "AND receiver=$3 AND user_mxid=$4",
            *key,
            user_mxid,
        )

    async def spaces_with_uninvited(self) -> list[Any]:
        """Rows (network, space_id, receiver, mxid) of the spaces with a room and a user
        still to invite."""
        return await self.db.fetch(
            "SELECT DISTINCT m.network, m.space_id, m.receiver, s.mxid FROM space_member m "
            "JOIN space s ON s.network=m.network AND s.space_id=m.space_id "
            "AND s.receiver=m.receiver WHERE m.invited=false AND s.mxid IS NOT NULL"
        )
