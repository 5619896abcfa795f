"""What IRC keeps per login, typed, on the login's row (bridgekit's login metadata).

Was four key/value strings per login (``irc:nick:<id>``, ``irc:pass:<id>``...) that logout had
to delete one by one; migration 001 of this connector moved them here. Secrets stay encrypted
at rest (crypto.py): the metadata holds the tokens, never the plain text.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bridgekit.contract.connector import BridgeAPI

__all__ = ["IRCLoginMeta", "LoginState"]


@dataclass
class IRCLoginMeta:
    VERSION: ClassVar[int] = 1
    #: The nick the user last chose (``irc nick``), wanted again on reconnect.
    nick: str | None = None
    #: NickServ/SASL password, as a crypto.py token (context: the login id).
    password: str | None = None
    #: Channel keys (+k), a JSON object folded name -> key as a crypto.py token.
    channel_keys: str | None = None
    #: Channels to be in, rejoined on reconnect (names as typed).
    channels: list[str] = field(default_factory=list)


class LoginState:
    """Read-modify-write of :class:`IRCLoginMeta`, one at a time per login (a join saving the
    channel list and its key at once must not lose either). A login being made (``login irc``
    stores its password before the runtime stores the login) is kept here until
    :meth:`stored` writes it."""

    def __init__(self, bridge: BridgeAPI) -> None:
        self.bridge = bridge
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, dict[str, Any]] = {}

    async def get(self, login_id: str) -> IRCLoginMeta:
        meta: IRCLoginMeta = await self.bridge.login_metadata(login_id)
        for name, value in self._pending.get(login_id, {}).items():
            setattr(meta, name, value)
        return meta

    async def update(self, login_id: str, **changes: Any) -> None:
        """Change some fields; durable when it returns (in memory for a login not stored)."""
        async with self._locks.setdefault(login_id, asyncio.Lock()):
            meta = await self.get(login_id)
            for name, value in changes.items():
                setattr(meta, name, value)
            try:
                await self.bridge.set_login_metadata(login_id, meta)
            except LookupError:
                self._pending.setdefault(login_id, {}).update(changes)
            else:
                self._pending.pop(login_id, None)

    async def stored(self, login_id: str) -> None:
        """The runtime stored the login: what was kept for it is written."""
        if login_id in self._pending:
            await self.update(login_id)

    def forget(self, login_id: str) -> None:
        self._pending.pop(login_id, None)
        self._locks.pop(login_id, None)
