"""The ``user_login`` table: each Matrix user's logins to the networks."""

from __future__ import annotations

import json

from mautrix.util.async_db import Database

from ..contract.connector import LoginInfo
from .net_metadata import MetadataStore
from .records import login_from_row
from .records import now_ms as _now_ms


class LoginTable:
    """Login rows (see the module docstring)."""

    def __init__(self, db: Database, net_metadata: MetadataStore) -> None:
        self.db = db
        self.net_metadata = net_metadata

    async def save_login(self, login: LoginInfo) -> None:
        await self.db.execute(
            "INSERT INTO user_login (id, user_mxid, network, remote_id, remote_name, metadata, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
            "remote_name=excluded.remote_name, metadata=excluded.metadata",
            login.id,
            login.user_mxid,
            login.network,
            login.remote_id,
            login.remote_name,
            json.dumps(login.metadata),
            _now_ms(),
        )

    async def delete_login(self, login_id: str) -> None:
        await self.db.execute("DELETE FROM user_login WHERE id=$1", login_id)
        self.net_metadata.forget_login(login_id)

    async def logins(self, user_mxid: str | None = None) -> list[LoginInfo]:
        if user_mxid is None:
            rows = await self.db.fetch("SELECT * FROM user_login ORDER BY created_at, id")
        else:
            rows = await self.db.fetch(
                "SELECT * FROM user_login WHERE user_mxid=$1 ORDER BY created_at, id", user_mxid
            )
        return [login_from_row(r) for r in rows]
