"""The fake network itself: its chats, users and history, and a log of what the bridge sent
there (tests read it). The connector that speaks to it is :mod:`.fake`."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import IO, Any

from ..contract.connector import RoomCapabilities
from ..contract.events import RemoteMessage, SpaceInfo


@dataclass
class FakeChat:
    id: str
    name: str = ""
    topic: str = ""
    members: list[str] = field(default_factory=list)
    is_dm: bool = False
    avatar_url: str | None = None
    #: The container the chat is in (its portal goes into that container's space).
    parent: SpaceInfo | None = None
    #: ``members`` is everyone in the chat: reported as a complete list (ChatInfo).
    members_complete: bool = False
    #: Remote id -> power level, reported with the member list.
    power: dict[str, int] = field(default_factory=dict)


@dataclass
class SentItem:
    """Something the bridge did on the fake network (a message, an edit, a reaction...)."""

    kind: str
    login_id: str
    chat_id: str
    data: Any
    remote_id: str | None = None
    #: More remote ids the network gave the same message (see FakeNetwork.ids_per_message).
    extra_ids: list[str] = field(default_factory=list)


class FakeNetwork:
    """The remote side: chats, users, and a log of what the bridge sent."""

    def __init__(self) -> None:
        self.chats: dict[str, FakeChat] = {}
        self.users: dict[str, str] = {}  # remote id -> display name
        self.avatars: dict[str, str] = {}  # remote id -> avatar URL (what the network reports)
        self.bots: set[str] = set()  # remote ids of users the network calls bots
        self.sent: list[SentItem] = []
        self.passwords: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._epoch = secrets.token_hex(3)
        self._changed = asyncio.Condition()
        self.fail_next_send: Exception | None = None
        #: When set (config ``sent_log``), every sent item is appended as a JSON line, so a
        #: test can see what a bridge in another process sent, even after kill -9.
        self.sent_log: IO[str] | None = None
        #: Per chat, messages "on the server" that a reconnecting client can fetch (backfill).
        self.history: dict[str, list[RemoteMessage]] = {}
        #: Every fetch_messages call: (chat, anchor, direction, limit, cursor).
        self.fetches: list[tuple[str, str | None, str, int, str | None]] = []
        #: When set, fetch_messages waits for it (a slow network, for ordering tests).
        self.fetch_gate: asyncio.Event | None = None
        #: Matrix event id -> remote id of every message received (for deduplication).
        self.sent_event_ids: dict[str, str | None] = {}
        #: Per chat, what the room allows (read-only, edit window...): see RoomCapabilities.
        self.capabilities: dict[str, RoomCapabilities] = {}
        #: How many remote ids the network gives each Matrix message (like IRC splitting a
        #: long message into lines, each with its own msgid): the first, then extra ids.
        self.ids_per_message = 1

    def next_id(self) -> str:
        # Unique across restarts too, like real network ids: a reused id would (rightly) be
        # taken for an echo of an earlier message and dropped.
        return f"fk{self._epoch}.{next(self._ids)}"

    def add_chat(
        self, chat_id: str, name: str = "", members: list[str] | None = None, **kw: Any
    ) -> FakeChat:
        chat = FakeChat(chat_id, name or chat_id, members=list(members or []), **kw)
        self.chats[chat_id] = chat
        return chat

    async def record(self, item: SentItem) -> None:
        self.sent.append(item)
        if item.kind == "message":
            self.sent_event_ids[item.data.event_id] = item.remote_id
        if self.sent_log is not None:
            data = item.data
            body = getattr(getattr(data, "content", None), "body", None)
            line = {
                "kind": item.kind,
                "chat": item.chat_id,
                "id": item.remote_id,
                "body": body,
                "event_id": getattr(data, "event_id", None),
            }
            self.sent_log.write(json.dumps(line) + "\n")
            self.sent_log.flush()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Any, timeout: float = 15) -> SentItem:
        """The first sent item matching ``predicate``, waiting for it if need be."""

        async def find() -> SentItem:
            async with self._changed:
                while True:
                    for item in self.sent:
                        if predicate(item):
                            return item
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)
