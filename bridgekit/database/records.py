"""The runtime's records (rows of its tables) and their conversion from database rows."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..contract.connector import LoginInfo
from ..contract.events import PortalKey


class LRU(OrderedDict):
    """A tiny bounded cache: oldest entries fall out first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        if key in self:  # a new key (the usual case on hot paths) is already at the end
            self.move_to_end(key)
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class PortalRow:
    """A ``portal`` row. The runtime's portals are :class:`bridgekit.objects.Portal` (a
    subclass that owns its row, metadata and queue): the tables build them through the
    factory they are given (see :meth:`~bridgekit.database.store.Store.set_factories`)."""

    network: str
    key: PortalKey
    mxid: str | None = None
    name: str | None = None
    topic: str | None = None
    avatar_url: str | None = None
    is_dm: bool = False
    plumbed: bool = False
    relay_login: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class GhostRow:
    """A ``ghost`` row (see :class:`PortalRow`: the runtime's are
    :class:`bridgekit.objects.Ghost`)."""

    network: str
    remote_id: str
    mxid: str
    name: str | None = None
    #: The avatar as the network last reported it (an http(s) URL or mxc:// URI): a report of
    #: the same one costs nothing.
    avatar_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The remote user is a bot (as the network says). Kept for connectors and commands (see
    #: :meth:`~bridgekit.contract.connector.BridgeAPI.ghost_is_bot`); Matrix profiles have no
    #: standard field for it.
    is_bot: bool = False


@dataclass
class BridgeUser:
    mxid: str
    management_room: str | None = None
    double_puppet: str | None = None  # access token of the user's own account, if set
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class MessageRow:
    network: str
    portal: PortalKey
    remote_id: str
    part: str
    event_id: str
    room_id: str
    sender_mxid: str
    sender_remote: str | None
    ts: int
    thread_root: str | None = None


@dataclass
class ReactionRow:
    network: str
    portal: PortalKey
    target_id: str
    sender_remote: str
    key: str
    event_id: str
    room_id: str
    remote_id: str | None = None


@dataclass
class OutboxItem:
    seq: int
    network: str
    portal: PortalKey
    login_id: str | None
    payload: str


def portal_from_row(row: Any, make: Callable[..., PortalRow] = PortalRow) -> PortalRow:
    return make(
        network=row["network"],
        key=PortalKey(row["remote_id"], row["receiver"]),
        mxid=row["mxid"],
        name=row["name"],
        topic=row["topic"],
        avatar_url=row["avatar_url"],
        is_dm=bool(row["is_dm"]),
        plumbed=bool(row["plumbed"]),
        relay_login=row["relay_login"],
        metadata=json.loads(row["metadata"] or "{}"),
    )


def ghost_from_row(row: Any, make: Callable[..., GhostRow] = GhostRow) -> GhostRow:
    return make(
        network=row["network"],
        remote_id=row["remote_id"],
        mxid=row["mxid"],
        name=row["name"],
        avatar_url=row["avatar_url"],
        metadata=json.loads(row["metadata"] or "{}"),
        is_bot=bool(row["is_bot"]),
    )


def message_from_row(row: Any) -> MessageRow:
    return MessageRow(
        network=row["network"],
        portal=PortalKey(row["portal_id"], row["receiver"]),
        remote_id=row["remote_id"],
        part=row["part"],
        event_id=row["event_id"],
        room_id=row["room_id"],
        sender_mxid=row["sender_mxid"],
        sender_remote=row["sender_remote"],
        ts=row["ts"],
        thread_root=row["thread_root"],
    )


def reaction_from_row(row: Any) -> ReactionRow:
    return ReactionRow(
        network=row["network"],
        portal=PortalKey(row["portal_id"], row["receiver"]),
        target_id=row["target_id"],
        sender_remote=row["sender_remote"],
        key=row["reaction_key"],
        event_id=row["event_id"],
        room_id=row["room_id"],
        remote_id=row["remote_id"],
    )


def user_from_row(row: Any) -> BridgeUser:
    return BridgeUser(
        row["mxid"],
        row["management_room"],
        row["double_puppet"],
        json.loads(row["metadata"] or "{}"),
    )


def login_from_row(row: Any) -> LoginInfo:
    return LoginInfo(
        id=row["id"],
        user_mxid=row["user_mxid"],
        network=row["network"],
        remote_id=row["remote_id"],
        remote_name=row["remote_name"],
        metadata=json.loads(row["metadata"] or "{}"),
    )


def now_ms() -> int:
    """Wall-clock milliseconds, as the tables' ``created_at``/``received_at`` columns hold."""
    return int(time.time() * 1000)
