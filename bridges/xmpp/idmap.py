"""XMPP message ids, which come in several kinds, mapped to one id per message.

A message in a MUC has the sender's ``id`` attribute, usually an ``origin-id`` and the
``stanza-id`` the room gives it; XEPs refer to it by one or the other (XEP-0308 corrections by
``id``; XEP-0424 retractions, XEP-0444 reactions, XEP-0461 replies and XEP-0333 markers in a
MUC by the room's stanza-id; in 1:1 chats by ``id``/``origin-id``). The bridge stores one
*canonical* id per message - the room's stanza-id in a MUC, the origin-id or id in a chat - and
this map turns every other id of the message into it, and back to the ``id`` the bridge itself
sent (for corrections of Matrix users' messages). One record per message keeps its author and
that sent ``id`` (one database write, not one per fact). It also keeps the XEP-0444 reaction
sets, which the protocol sends whole. Stored in the runtime's key/value table (the network's own
keys), cached in memory.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from bridgekit.contract.connector import BridgeAPI
from bridgekit.contract.events import PortalKey

from .state import XMPPLoginMeta


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: str | None) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _pk(portal: PortalKey) -> str:
    return f"{portal.id}|{portal.receiver}"


class IdMap:
    def __init__(self, bridge: BridgeAPI, size: int = 50_000) -> None:
        self.bridge = bridge
        self._cache = _LRU(size)

    async def _get(self, key: str) -> str | None:
        if key in self._cache:
            return self._cache[key]
        value = await self.bridge.get_kv(key)
        self._cache.put(key, value)
        return value

    async def _set(self, key: str, value: str | None) -> None:
        if key in self._cache and self._cache[key] == value:
            return
        await self.bridge.set_kv(key, value)
        self._cache.put(key, value)

    # -- aliases ----------------------------------------------------------------------------

    async def add_aliases(self, portal: PortalKey, canonical: str, *others: str | None) -> None:
        for other in others:
            if other and other != canonical:
                await self._set(f"xmpp:alias:{_pk(portal)}:{other}", canonical)

    async def resolve(self, portal: PortalKey, some_id: str) -> str:
        """The canonical id of the message ``some_id`` names (itself if unknown)."""
        found = await self._get(f"xmpp:alias:{_pk(portal)}:{some_id}")
        return found or some_id

    async def remember(
        self, portal: PortalKey, canonical: str, author: str, sent_id: str | None = None
    ) -> None:
        """Who wrote a message (a remote user id, or ``login:<id>`` for a Matrix user) and, for
        a Matrix user's message, the ``id`` we sent it with (corrections refer to it).

        One key per message, written once: every key is a database write per bridged message.
        """
        record = {"a": author}
        if sent_id and sent_id != canonical:
            record["s"] = sent_id
        await self._set(
            f"xmpp:msg:{_pk(portal)}:{canonical}", json.dumps(record, ensure_ascii=False)
        )

    async def _record(self, portal: PortalKey, canonical: str) -> dict[str, str]:
        raw = await self._get(f"xmpp:msg:{_pk(portal)}:{canonical}")
        try:
            value = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    async def set_author(self, portal: PortalKey, canonical: str, author: str) -> None:
        await self.remember(portal, canonical, author)

    async def set_sent_id(self, portal: PortalKey, canonical: str, sent_id: str) -> None:
        """Add the ``id`` we sent a message with to its record (prefer :meth:`remember`)."""
        record = await self._record(portal, canonical)
        await self.remember(portal, canonical, str(record.get("a") or ""), sent_id)

    async def author(self, portal: PortalKey, canonical: str) -> str | None:
        found = (await self._record(portal, canonical)).get("a")
        if isinstance(found, str):
            return found
        # Written before message records existed.
        return await self._get(f"xmpp:author:{_pk(portal)}:{canonical}")

    async def sent_id(self, portal: PortalKey, canonical: str) -> str:
        record = await self._record(portal, canonical)
        if isinstance(record.get("s"), str):
            return record["s"]
        if record:
            return canonical
        return await self._get(f"xmpp:sent:{_pk(portal)}:{canonical}") or canonical

    async def stanza_id(self, portal: PortalKey, some_id: str) -> str:
        """The id other clients use for a message in this chat (see the module docstring)."""
        return await self.resolve(portal, some_id)

    # -- XEP-0444 reaction sets -------------------------------------------------------------

    async def reactions(self, portal: PortalKey, target: str, who: str) -> list[str]:
        raw = await self._get(f"xmpp:react:{_pk(portal)}:{target}:{who}")
        try:
            value = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    async def set_reactions(
        self, portal: PortalKey, target: str, who: str, keys: list[str]
    ) -> None:
        await self._set(
            f"xmpp:react:{_pk(portal)}:{target}:{who}",
            json.dumps(keys, ensure_ascii=False) if keys else None,
        )

    # -- which MUCs a login is in (rejoined after a restart) -----------------------------------

    # (kept on the login's row, XMPPLoginMeta: not per-message, and gone with the login)

    async def rooms(self, login_id: str) -> dict[str, str]:
        meta: XMPPLoginMeta = await self.bridge.login_metadata(login_id)
        return {str(k): str(v) for k, v in meta.rooms.items()}

    async def set_rooms(self, login_id: str, rooms: dict[str, str]) -> None:
        meta: XMPPLoginMeta = await self.bridge.login_metadata(login_id)
        if meta.rooms == rooms:
            return
        meta.rooms = dict(rooms)
        try:
            await self.bridge.set_login_metadata(login_id, meta)
        except LookupError:  # a login not stored (any more): nothing to rejoin
            pass

    # -- occupancies of a nick in semi-anonymous rooms (see occupants.py) ----------------------

    async def occupancy(self, room: str, nick: str) -> int:
        raw = await self._get(f"xmpp:occgen:{room}:{nick}")
        return int(raw) if raw and raw.isdigit() else 0

    async def next_occupancy(self, room: str, nick: str) -> None:
        """The occupant of ``nick`` left: whoever takes it next is someone new."""
        await self._set(f"xmpp:occgen:{room}:{nick}", str(await self.occupancy(room, nick) + 1))
