"""A stored login and the login flow: a small state machine the management room drives
(``login <network>``). Its own module, so the capabilities (``AutoLogin``) and the connector
classes name these types without importing each other; re-exported by
:mod:`bridgekit.contract.connector`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoginInfo:
    """A stored login: what the connector needs to reconnect after a restart."""

    id: str
    user_mxid: str
    network: str
    remote_id: str
    remote_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoginField:
    id: str
    name: str
    description: str = ""
    secret: bool = False


@dataclass
class LoginStep:
    """One step of a login flow: either a question for the user, or the finished login."""

    instructions: str = ""
    fields: list[LoginField] = field(default_factory=list)
    complete: LoginInfo | None = None

    @property
    def is_complete(self) -> bool:
        return self.complete is not None


@dataclass
class LoginFlow:
    id: str
    name: str
    description: str = ""


class LoginProcess(ABC):
    """A login in progress for one Matrix user. ``submit`` gets the answers to ``fields``."""

    @abstractmethod
    async def start(self) -> LoginStep: ...

    @abstractmethod
    async def submit(self, values: dict[str, str]) -> LoginStep: ...

    async def cancel(self) -> None:  # noqa: B027 - optional hook
        """Release whatever ``start`` acquired."""
