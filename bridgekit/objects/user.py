"""A Matrix user of the bridge: its ``bridge_user`` row and its loaded logins.

One object per user, kept by :class:`bridgekit.logins.LoginService`. The row itself stays in
the store's in-memory user table (commands replace it as a whole when they save it), so it is
read through here rather than copied: a copy would go stale.
"""

from __future__ import annotations

from ..contract.connector import NetworkClient
from ..database.records import BridgeUser
from ..database.users import UserTable
from .user_login import UserLogin

__all__ = ["User"]


class User:
    """One user (see the module docstring). ``logins`` are the loaded ones, in load order."""

    __slots__ = ("_table", "logins", "mxid")

    def __init__(self, mxid: str, table: UserTable) -> None:
        self.mxid = mxid
        self._table = table
        self.logins: list[UserLogin] = []

    def __repr__(self) -> str:
        return f"User({self.mxid!r}, {len(self.logins)} login(s))"

    async def row(self) -> BridgeUser | None:
        """The user's row (None until the bridge has spoken with them)."""
        return await self._table.get_user(self.mxid)

    async def save(self, row: BridgeUser) -> None:
        if row.mxid != self.mxid:
            raise ValueError(f"the row of {row.mxid} saved as {self.mxid}'s")
        await self._table.save_user(row)

    async def management_room(self) -> str | None:
        row = await self.row()
        return row.management_room if row else None

    async def double_puppet(self) -> str | None:
        row = await self.row()
        return row.double_puppet if row else None

    def clients(self, network: str | None = None) -> list[NetworkClient]:
        """The live clients of the user's loaded logins (of ``network`` only, if given)."""
        return [ul.client for ul in self.logins if network is None or ul.network == network]
