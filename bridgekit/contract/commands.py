"""Command types a connector uses: what a command declares and what its handler receives.

The processor that parses, checks and runs them is :mod:`bridgekit.commands.processor`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the contract imports nothing of the runtime
    from ..bridge import Bridge
    from ..objects.portal import Portal
    from .connector import BridgeAPI


@dataclass
class CommandEvent:
    #: The runtime's own commands get the :class:`Bridge`; a connector's commands get that
    #: connector's network-bound :class:`BridgeAPI` (its ``NetworkBridge``), so they reach
    #: the runtime only through the contract, never its portals, Matrix client or store.
    bridge: Bridge | BridgeAPI
    room_id: str
    sender: str
    command: str
    args: list[str]
    raw_args: str
    level: int
    portal: Portal | None
    is_management: bool
    send_notice: Callable[[str, str, str | None], Awaitable[None]]

    async def reply(self, text: str, html: str | None = None) -> None:
        await self.send_notice(self.room_id, text, html)


Handler = Callable[[CommandEvent], Awaitable[None]]


@dataclass
class Command:
    name: str
    handler: Handler
    help: str
    usage: str = ""
    level: int = 2
    section: str = "General"
    aliases: list[str] = field(default_factory=list)
    #: Whether a use of the command carries a secret (a password, a token), given its
    #: arguments: such a use is refused outside the user's management room and its message is
    #: redacted (see :mod:`.command_secrets`). A callable decides per use (``irc storepass``).
    secret: bool | Callable[[list[str]], bool] = False
    #: Subcommands (first arguments) some uses of which carry a secret, e.g. ``("storepass",)``:
    #: a mistyped one (``irc storepas pw``) is then removed like the real use. ``secret``
    #: still decides which uses carry one.
    secret_subcommands: tuple[str, ...] = ()
    #: The connector that registered the command (set by the runtime): its handler gets
    #: that connector's BridgeAPI as ``ce.bridge``.
    network: str | None = None

    def carries_secret(self, args: list[str]) -> bool:
        return self.secret(args) if callable(self.secret) else self.secret
