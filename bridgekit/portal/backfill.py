"""Backfill: a chat's history through :class:`~bridgekit.contract.capabilities.BackfillHandler`.

Two uses, both configured under ``bridge.backfill``:

- **Catch-up** (forward): when a login connects (the bridge starts, or the network comes
  back), each of its portals gets a :class:`~bridgekit.contract.events.RemoteBackfill` request in
  its ordered queue, naming the newest remote message bridged so far. The fetch runs when the
  request's turn comes, inside the queue: live events the connector queues meanwhile wait
  behind it, so nothing said earlier reaches Matrix after something said later.
- **History** (backward): a portal room the runtime creates gets the chat's newest
  ``initial_limit`` messages before anything else is sent to it (the event that made the
  room waits, and is dropped as a duplicate if the history already held it).

Every message goes through the live path (:meth:`.RemoteToMatrix.remote_message`): dedupe by
remote id, ghosts, replies and threads, and the message's own timestamp as its Matrix time.
Pages are of ``page_size`` messages; catch-up sends each page before fetching the next, history
keeps at most ``initial_limit`` messages in memory. Where a fetch ended is kept in the
``backfill_state`` table (migration 006), so a restart goes on from there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..contract.capabilities import BACKWARD, FORWARD, BackfillHandler, FetchResult
from ..contract.events import RemoteBackfill, RemoteMessage
from ..database.backfill import BackfillState
from .clients import client_for

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from ..config import Config
    from ..contract.connector import NetworkClient
    from ..contract.events import PortalKey, RemoteEvent
    from ..database.store import Store
    from ..objects.portal import Portal

    #: Queues a remote event in its portal's ordered queue (the durable outbox).
    QueueEvent = Callable[[str | None, RemoteEvent], Awaitable[None]]
    #: The live path of one remote message (``RemoteToMatrix.remote_message``): portal,
    #: login id, message, transaction id. A callable, not the class: that module calls this one.
    SendMessage = Callable[[Portal, str | None, RemoteMessage, str], Awaitable[None]]

log = logging.getLogger("bridgekit.portal.backfill")

#: Upper bounds on what the configuration may ask for: history is held in memory before it
#: is sent (oldest first), and a page is one network request.
MAX_LIMIT = 10_000
MAX_PAGE = 500
#: Pages in a row that bring no message, each with a new cursor, before a fetch gives up: a
#: page of the network's may hold only what is not bridged, but a server that says "more"
#: forever with nothing in it must not hold the portal's queue (live events wait behind it).
MAX_EMPTY_PAGES = 5


def _int(value: object, default: int, top: int) -> int:
    try:
        return max(0, min(int(value), top))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


class Backfill:
    """Fetches history for portals and sends it through their ordered queues."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        clients: Mapping[str, NetworkClient],
        queue_remote_event: QueueEvent,
        send_message: SendMessage,
    ) -> None:
        self.config = config  # read when used: Config.set resets its settings
        self.store = store
        self.clients = clients  # the live map of loaded logins
        self.queue_remote_event = queue_remote_event
        self.send_message = send_message
        #: Portals created before any login was in their chat (a room made from an alias):
        #: their history is fetched before the first event a login brings them.
        self.pending: set[tuple[str, PortalKey]] = set()

    # -- configuration -------------------------------------------------------------------

    @property
    def catchup(self) -> bool:
        return self.config.settings.bridge.backfill.catchup

    @property
    def catchup_limit(self) -> int:
        config = self.config
        value = config.settings.bridge.backfill.catchup_limit
        legacy = config.settings.bridge.backfill_limit
        if legacy is not None and config.get("bridge.backfill.catchup_limit") is None:
            value = legacy  # the key's old name, set alone
        return _int(value, 100, MAX_LIMIT)

    @property
    def initial_limit(self) -> int:
        return _int(self.config.settings.bridge.backfill.initial_limit, 50, MAX_LIMIT)

    @property
    def page_size(self) -> int:
        page = self.config.settings.bridge.backfill.page_size
        return max(1, _int(page, 50, MAX_PAGE))

    # -- triggers ------------------------------------------------------------------------

    async def catch_up(self, login_id: str) -> None:
        """``login_id`` (re)connected: queue a catch-up for each of its portals."""
        client = self.clients.get(login_id)
        if not isinstance(client, BackfillHandler):
            return
        try:
            if self.catchup and self.catchup_limit:
                await self._queue_catch_ups(login_id, client)
        finally:
            try:
                await client.catch_up_queued()
            except Exception:
                log.exception("Login %s: catch_up_queued failed", login_id)

    async def _queue_catch_ups(self, login_id: str, client: BackfillHandler) -> None:
        store = self.store
        for portal in await store.all_portals():
            if portal.network != client.login.network or not client.is_in_portal(portal.key):
                continue
            anchor = await store.last_remote_message(portal.network, portal.key)
            state = await self.state(portal)
            # A portal whose history was cut short (a crash while it was sent) and that got
            # nothing since: the history again, rather than a catch-up from nowhere.
            direction = BACKWARD if anchor is None and state and not state.initial_done else FORWARD
            if direction == FORWARD and anchor is None and not (state and state.forward_cursor):
                continue  # nothing bridged, nowhere to go on from: nothing to catch up on
            await self.queue_remote_event(
                login_id,
                RemoteBackfill(
                    portal.key, network=portal.network, direction=direction, anchor=anchor
                ),
            )

    async def created(self, portal: Portal, client: NetworkClient | None) -> None:
        """A portal room was just created: its history first (never raises)."""
        if not self.initial_limit:
            return
        if client is None or not client.is_in_portal(portal.key):
            self.pending.add((portal.network, portal.key))
            try:
                await self.save(portal, BackfillState())  # due, also after a restart
            except Exception:
                log.exception("Could not note the history of %s as due", portal.key)
            return
        if isinstance(client, BackfillHandler):
            await self._history_now(portal, client)

    async def due(self, portal: Portal, login_id: str | None) -> None:
        """An event for ``portal`` is about to be handled: its history first, if it is due
        and a login in the chat can fetch it now."""
        key = (portal.network, portal.key)
        if key not in self.pending:
            return
        client = client_for(self.clients, portal.network, portal.key, login_id)
        if client is None or not client.is_in_portal(portal.key):
            return
        self.pending.discard(key)
        if isinstance(client, BackfillHandler):
            await self._history_now(portal, client)

    async def _history_now(self, portal: Portal, client: BackfillHandler) -> None:
        try:
            await self._history(portal, client, f"h{time.time_ns()}")
        except Exception:
            log.exception("History of %s could not be backfilled", portal.key)

    async def handle(
        self, portal: Portal, login_id: str | None, evt: RemoteBackfill, seq: int
    ) -> None:
        """A :class:`RemoteBackfill` whose turn came in the portal's queue."""
        if evt.messages:  # pushed by the connector
            await self._send(portal, login_id, evt.messages, f"{seq}")
            return
        client = client_for(self.clients, portal.network, portal.key, login_id)
        if not isinstance(client, BackfillHandler):
            return
        try:
            if evt.direction == BACKWARD:
                state = await self.state(portal)
                if self.initial_limit and not (state and state.initial_done):
                    await self._history(portal, client, f"{seq}")
            elif self.catchup:
                await self._catch_up(portal, login_id, client, evt.anchor, seq)
        except Exception:
            log.exception("Backfill of %s failed", portal.key)

    # -- the work ------------------------------------------------------------------------

    async def _fetch(
        self,
        client: BackfillHandler,
        portal: Portal,
        anchor: str | None,
        direction: str,
        limit: int,
        cursor: str | None,
    ) -> FetchResult:
        result = await client.fetch_messages(portal.key, anchor, direction, limit, cursor)
        if isinstance(result, list):  # lenient: a bare list is one final page
            result = FetchResult(messages=result)
        # Never more than asked for (those next to the anchor), and always this portal's (a
        # connector's slip cannot put messages into another room).
        messages = [m for m in result.messages if isinstance(m, RemoteMessage)]
        messages = messages[:limit] if direction == FORWARD else messages[-limit:]
        result.messages = [replace(m, portal=portal.key, network=portal.network) for m in messages]
        return result

    async def _catch_up(
        self,
        portal: Portal,
        login_id: str | None,
        client: BackfillHandler,
        anchor: str | None,
        seq: int,
    ) -> None:
        """What came after ``anchor``, page by page, each sent before the next is fetched."""
        state = await self.state(portal) or BackfillState()
        cursor = state.forward_cursor if state.forward_anchor == anchor else None
        if anchor is None and cursor is None:
            return  # nothing bridged and nowhere to go on from: history is for creation
        limit, sent, page, empty = self.catchup_limit, 0, 0, 0
        while sent < limit:
            res = await self._fetch(
                client, portal, anchor, FORWARD, min(self.page_size, limit - sent), cursor
            )
            await self._send(portal, login_id, res.messages, f"{seq}.{page}")
            sent += len(res.messages)
            if res.messages and res.messages[-1].id:
                anchor = res.messages[-1].id
            empty = 0 if res.messages else empty + 1
            stuck = not res.messages and (res.cursor == cursor or empty >= MAX_EMPTY_PAGES)
            cursor = res.cursor
            newest = await self.store.last_remote_message(portal.network, portal.key)
            state.forward_anchor, state.forward_cursor = newest, cursor
            await self.save(portal, state)
            if not res.has_more or stuck:
                break
            page += 1
        if sent:
            log.info("Caught up on %d messages in %s", sent, portal.key)

    async def _history(self, portal: Portal, client: BackfillHandler, txn: str) -> None:
        """The newest ``initial_limit`` messages, fetched newest page first, sent oldest first."""
        self.pending.discard((portal.network, portal.key))
        state = await self.state(portal) or BackfillState()
        state.initial_done = False
        await self.save(portal, state)
        limit, pages = self.initial_limit, []
        anchor: str | None = None
        cursor: str | None = None
        total, more, empty = 0, False, 0
        while total < limit:
            res = await self._fetch(
                client, portal, anchor, BACKWARD, min(self.page_size, limit - total), cursor
            )
            pages.append(res.messages)
            total += len(res.messages)
            more = res.has_more
            empty = 0 if res.messages else empty + 1
            stuck = not res.messages and (res.cursor == cursor or empty >= MAX_EMPTY_PAGES)
            cursor = res.cursor
            if res.messages and res.messages[0].id:
                anchor = res.messages[0].id
            if not more or stuck:
                break
        messages = [m for page in reversed(pages) for m in page]
        login = getattr(client, "login", None)  # whose view: the user's own messages puppeted
        await self._send(portal, login.id if login else None, messages, txn)
        state.backward_cursor, state.backward_more, state.initial_done = cursor, more, True
        if state.forward_anchor is None:
            state.forward_anchor = await self.store.last_remote_message(portal.network, portal.key)
        await self.save(portal, state)
        if messages:
            log.info("Backfilled %d messages of history into %s", len(messages), portal.key)

    async def _send(
        self, portal: Portal, login_id: str | None, messages: list[RemoteMessage], txn: str
    ) -> None:
        """The live path for each message; a txn id per message, the same on a replay."""
        for i, msg in enumerate(messages):
            await self.send_message(portal, login_id, msg, f"{txn}.{i}")

    # -- progress ------------------------------------------------------------------------

    async def state(self, portal: Portal) -> BackfillState | None:
        return await self.store.backfill.get(portal)

    async def save(self, portal: Portal, state: BackfillState) -> None:
        await self.store.backfill.save(portal, state)
