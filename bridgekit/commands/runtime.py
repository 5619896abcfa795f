"""What the runtime's own commands (``help``, ``login``, ``bridge``, ``set-relay``...) get.

A connector's command gets the contract's :class:`~bridgekit.contract.connector.CommandEvent`
with its network's ``BridgeAPI``. The runtime's own commands belong to no network and need
more (the store, the Matrix client, the logins, the portal rooms): they get a
:class:`RuntimeCommandEvent`, whose :attr:`~RuntimeCommandEvent.runtime` holds those
collaborators (built by bridge.py), and the database portal the command was sent in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..contract.commands import Command, CommandEvent

if TYPE_CHECKING:
    from ..contract.connector import (
        BridgeAPI,
        BridgeStateEvent,
        LoginInfo,
        NetworkClient,
        NetworkConnector,
    )
    from ..database.store import BridgeUser, Store
    from ..matrix.client import MatrixClient
    from ..objects.portal import Portal
    from ..portal.rooms import Rooms
    from ..portal.spaces import Spaces
    from ..settings import BridgeSettings

#: Sends a notice (text, optional HTML) to a room as the bot.
SendNotice = Callable[[str, str, str | None], Awaitable[None]]


class LoginStateView(Protocol):
    """A login's state as ``ping`` and ``list-logins`` show it."""

    @property
    def state(self) -> BridgeStateEvent: ...

    @property
    def message(self) -> str: ...


class LoginLookups(Protocol):
    """The logins as the commands use them (the login service, bridgekit/logins.py)."""

    @property
    def clients(self) -> Mapping[str, NetworkClient]: ...

    @property
    def states(self) -> Mapping[str, LoginStateView]: ...

    def clients_of(self, user_mxid: str, network: str | None = None) -> list[NetworkClient]: ...

    async def add_login(self, login: LoginInfo) -> NetworkClient: ...

    async def remove_login(self, login_id: str) -> None: ...

    def new_login_id(self) -> str: ...


class CommandRegistry(Protocol):
    """The processor as its own commands (``help``, ``login``, ``cancel``) use it: a protocol,
    because the processor imports the commands that use it."""

    commands: dict[str, Command]

    def hint(self, ce: CommandEvent) -> str: ...

    async def start_login(self, ce: CommandEvent, network: str, flow_id: str | None) -> None: ...

    async def cancel_login(self, sender: str) -> bool: ...

    async def get_or_create_user(self, mxid: str) -> BridgeUser: ...


@dataclass
class CommandRuntime:
    """The collaborators of the runtime's own commands and of the command processor."""

    settings: BridgeSettings
    store: Store
    matrix: MatrixClient
    send_notice: SendNotice
    #: The enabled connectors by network (filled as the bridge starts).
    connectors: Mapping[str, NetworkConnector]
    logins: LoginLookups
    rooms: Rooms
    spaces: Spaces
    #: The connector and remote user id behind a ghost MXID, or None.
    connector_for_ghost: Callable[[str], tuple[NetworkConnector, str] | None]


@dataclass(kw_only=True)
class RuntimeCommandEvent(CommandEvent):
    """A runtime command's event: no network, so no ``BridgeAPI``; its collaborators instead."""

    bridge: BridgeAPI | None = None  # type: ignore[assignment] - the runtime's commands have none
    portal: Portal | None = None
    runtime: CommandRuntime
    processor: CommandRegistry
