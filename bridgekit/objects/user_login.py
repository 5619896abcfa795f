"""A login of a Matrix user to one network: its row, typed metadata, client and state.

One object per login, kept by :class:`bridgekit.logins.LoginService` from the moment the login
is loaded until it is removed; the runtime's maps of clients and states are indexes of these.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

from ..contract.connector import BridgeStateEvent, LoginInfo, NetworkClient
from ..database.net_metadata import MetadataStore

__all__ = ["LoginState", "UserLogin"]

T = TypeVar("T")


class LoginState:
    """How a login's connection is doing, as its connector last reported it."""

    def __init__(self) -> None:
        self.state = BridgeStateEvent.STARTING
        self.message = ""
        self.error = ""
        self.since = time.time()
        self.notified = False
        self.network = ""  # known once the login is loaded


class UserLogin:
    """One login (see the module docstring). ``info`` is its ``user_login`` row as the
    contract's :class:`~bridgekit.contract.connector.LoginInfo`; ``id``, ``network`` and
    ``user_mxid`` never change and are plain attributes (read for every Matrix message)."""

    __slots__ = ("_metadata", "client", "id", "info", "network", "state", "user_mxid")

    def __init__(
        self,
        info: LoginInfo,
        client: NetworkClient,
        state: LoginState,
        metadata: MetadataStore,
    ) -> None:
        self.info = info
        self.id = info.id
        self.network = info.network
        self.user_mxid = info.user_mxid
        self.client = client
        self.state = state
        self._metadata = metadata

    def __repr__(self) -> str:
        return f"UserLogin({self.id!r}, {self.network!r}, {self.user_mxid!r})"

    @property
    def remote_name(self) -> str:
        return self.info.remote_name

    async def metadata(self, cls: type[T]) -> T:
        """The connector's typed metadata of this login (``cls``'s default if never written)."""
        return await self._metadata.get("login", self.network, (self.id,), cls)

    async def set_metadata(self, value: Any) -> None:
        """Write this login's metadata, durably before returning."""
        await self._metadata.set("login", self.network, (self.id,), value)
