"""The ``bridge_user`` table (Matrix users of the bridge), all in memory after :meth:`load`, with
the set of their management rooms (every Matrix event asks whether its room is one)."""

from __future__ import annotations

import json

from mautrix.util.async_db import Database

from .records import BridgeUser, user_from_row


class UserTable:
    """Bridge user rows (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._users: dict[str, BridgeUser] = {}
        self.management_rooms: set[str] = set()
        self._loaded = False

    async def load(self) -> None:
        for user in await self._fetch_users():
            self._remember_user(user)
        self._loaded = True

    async def get_user(self, mxid: str) -> BridgeUser | None:
        cached = self._users.get(mxid)
        if cached or self._loaded:
            return cached
        row = await self.db.fetchrow("SELECT * FROM bridge_user WHERE mxid=$1", mxid)
        return self._remember_user(user_from_row(row)) if row else None

    async def _fetch_users(self) -> list[BridgeUser]:
        return [user_from_row(r) for r in await self.db.fetch("SELECT * FROM bridge_user")]

    async def all_users(self) -> list[BridgeUser]:
        if self._loaded:
            return list(self._users.values())
        return await self._fetch_users()

    def _remember_user(self, user: BridgeUser) -> BridgeUser:
        old = self._users.get(user.mxid)
        if old and old.management_room:
            self.management_rooms.discard(old.management_room)
        self._users[user.mxid] = user
        if user.management_room:
            self.management_rooms.add(user.management_room)
        return user

    async def save_user(self, user: BridgeUser) -> None:
        await self.db.execute(
            "INSERT INTO bridge_user (mxid, management_room, double_puppet, metadata) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (mxid) DO UPDATE SET "
            "management_room=excluded.management_room, double_puppet=excluded.double_puppet, "
            "metadata=excluded.metadata",
            user.mxid,
            user.management_room,
            user.double_puppet,
            json.dumps(user.metadata),
        )
        self._remember_user(user)
