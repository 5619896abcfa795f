"""A channel's history: catch-up after an outage and recent history for new portals.

The runtime asks (``BackfillHandler.fetch_messages``) and sends what it gets through each
portal's ordered queue, deduplicated by ``ts``; this module only reads Slack:

- **Forward** (catch-up): the messages after the newest one bridged. ``conversations.history``
  answers newest first and pages towards older ones, so the whole gap after the anchor is
  read (pages of :data:`PAGE`, up to :data:`MAX_SCAN` messages) and handed over oldest first,
  ``limit`` at a time; the cursor is the ``ts`` of the last message handed over. Threads that
  got replies in the gap (roots in the gap, and among the :data:`THREAD_LOOKBACK` top-level
  messages before it: ``latest_reply`` says so) are read with ``conversations.replies`` from
  the same anchor and merged in by ``ts``, so a reply always comes after its root.
- **Backward** (a new portal's history): the newest ``limit`` top-level messages before the
  anchor (thread replies are not fetched for history).

Live events must not overtake the catch-up: an app login holds what Socket Mode delivers from
the moment it connects (:class:`~bridgekit.contract.live_gate.LiveGate`) until the runtime
has queued the login's catch-ups (``catch_up_queued``); what arrives then waits behind them
in each portal's queue, and a live message the catch-up already brought is dropped by the
runtime as a duplicate. The same happens when slack-sdk reconnects Socket Mode by itself
(``SlackClient.socket_up``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from bridgekit.contract.connector import (
    BACKWARD,
    BackfillHandler,
    FetchResult,
)
from bridgekit.contract.events import PortalKey, RemoteMessage, RemoteMessageID
from bridgekit.contract.live_gate import LiveGate

from .ids import parse_chat_rid

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.history")

#: Messages per ``conversations.history`` / ``conversations.replies`` call (Slack advises
#: at most 200).
PAGE = 200
#: Messages of one gap read at most: a longer outage loses its oldest part (logged).
MAX_SCAN = 10_000
#: Top-level messages before the gap whose threads are checked for replies in it (one
#: ``conversations.history`` call): replies to older threads are not caught up.
THREAD_LOOKBACK = 200


def ts_key(ts: str) -> tuple[int, int]:
    """A Slack ``ts`` ("1712345678.000100") as a sortable pair; malformed ones sort first."""
    sec, _, usec = ts.partition(".")
    try:
        return int(sec), int(usec.ljust(6, "0")[:6] or 0)
    except ValueError:
        return -1, -1


class SlackBackfill(BackfillHandler):
    """SlackClient's backfill capability (the work is :class:`History`'s)."""

    connector: SlackConnector
    live_gate: LiveGate

    async def fetch_messages(
        self,
        portal: PortalKey,
        anchor: RemoteMessageID | None,
        direction: str,
        limit: int,
        cursor: str | None = None,
    ) -> FetchResult:
        client: SlackClient = self  # type: ignore[assignment]
        if direction != BACKWARD and not client.is_app and not portal.receiver:
            # A channel is caught up by its workspace's app (which receives its events); a
            # personal login would only fetch it again (or fail where it is not a member).
            return FetchResult()
        return await self.connector.history.fetch(client, portal, anchor, direction, limit, cursor)

    async def catch_up_queued(self) -> None:
        self.live_gate.open()


class History:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector

    async def fetch(
        self,
        client: SlackClient,
        portal: PortalKey,
        anchor: str | None,
        direction: str,
        limit: int,
        cursor: str | None,
    ) -> FetchResult:
        parsed = parse_chat_rid(portal.id)
        if parsed is None or parsed[0] != client.team_id or limit <= 0:
            return FetchResult()
        channel = parsed[1]
        if direction == BACKWARD:
            result = await self._backward(client, channel, cursor or anchor, limit)
        else:
            position = cursor or anchor
            if not position:
                return FetchResult()  # nothing bridged yet: history is for creation
            result = await self._forward(client, channel, position, limit)
        if portal.receiver:
            result.messages = [_as_seen_by(portal.receiver, m) for m in result.messages]
        return result

    async def _forward(
        self, client: SlackClient, channel: str, position: str, limit: int
    ) -> FetchResult:
        raw = await self._gap(client, channel, position)
        taken, rest = raw[:limit], raw[limit:]
        messages = await self._convert(client, channel, taken)
        cursor = str(taken[-1]["ts"]) if taken else position
        return FetchResult(messages, cursor=cursor, has_more=bool(rest))

    async def _gap(self, client: SlackClient, channel: str, oldest: str) -> list[dict[str, Any]]:
        """Every message after ``oldest`` (thread replies included), oldest first."""
        found: dict[str, dict[str, Any]] = {}
        page_cursor = ""
        while True:
            args: dict[str, Any] = {"channel": channel, "oldest": oldest, "limit": PAGE}
            if page_cursor:
                args["cursor"] = page_cursor
            data = await client.call("conversations.history", **args)
            for m in _messages(data):
                found[str(m["ts"])] = m
            page_cursor = _next_cursor(data)
            if not page_cursor or len(found) >= MAX_SCAN:
                if page_cursor:
                    log.warning("Catch-up of %s read %d messages and stopped", channel, MAX_SCAN)
                break
        floor = ts_key(oldest)
        roots = [str(m["ts"]) for m in found.values() if _replied_since(m, floor)]
        roots += await self._older_threads(client, channel, oldest)
        for root in dict.fromkeys(roots):
            for reply in await self._replies(client, channel, root, oldest):
                found.setdefault(str(reply["ts"]), reply)
        return sorted(found.values(), key=lambda m: ts_key(str(m["ts"])))

    async def _older_threads(self, client: SlackClient, channel: str, oldest: str) -> list[str]:
        """Roots from before the gap (the newest :data:`THREAD_LOOKBACK`) that got replies in
        it: their replies are part of what was missed."""
        try:
            data = await client.call(
                "conversations.history",
                channel=channel,
                latest=oldest,
                inclusive=True,
                limit=THREAD_LOOKBACK,
            )
        except Exception as e:  # noqa: BLE001 - the gap itself is still caught up
            log.info("Threads before %s in %s not read: %s", oldest, channel, e)
            return []
        floor = ts_key(oldest)
        return [str(m["ts"]) for m in _messages(data) if _replied_since(m, floor)]

    async def _replies(
        self, client: SlackClient, channel: str, root: str, oldest: str
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page_cursor = ""
        while len(out) < MAX_SCAN:
            args: dict[str, Any] = {"channel": channel, "ts": root, "oldest": oldest, "limit": PAGE}
            if page_cursor:
                args["cursor"] = page_cursor
            try:
                data = await client.call("conversations.replies", **args)
            except Exception as e:  # noqa: BLE001 - the channel's own messages still come
                log.info("Replies of %s in %s not read: %s", root, channel, e)
                break
            out.extend(m for m in _messages(data) if m["ts"] != root)
            page_cursor = _next_cursor(data)
            if not page_cursor:
                break
        return out

    async def _backward(
        self, client: SlackClient, channel: str, latest: str | None, limit: int
    ) -> FetchResult:
        args: dict[str, Any] = {"channel": channel, "limit": min(limit, 999)}
        if latest:
            args["latest"] = latest
        data = await client.call("conversations.history", **args)
        raw = sorted(_messages(data), key=lambda m: ts_key(str(m["ts"])))[-limit:]
        messages = await self._convert(client, channel, raw)
        cursor = str(raw[0]["ts"]) if raw else latest
        more = bool(data.get("has_more")) and bool(raw)
        return FetchResult(messages, cursor=cursor, has_more=more)

    async def _convert(
        self, client: SlackClient, channel: str, raw: list[dict[str, Any]]
    ) -> list[RemoteMessage]:
        out: list[RemoteMessage] = []
        for event in raw:
            event = {**event, "channel": channel}
            try:
                msg = await self.connector.inbound.to_message(client, event)
            except Exception:  # noqa: BLE001 - one odd message must not stop the catch-up
                log.exception("Slack message %s of %s not converted", event.get("ts"), channel)
                continue
            if msg is None:
                continue
            thread_ts = str(event.get("thread_ts") or "")
            if (
                thread_ts
                and thread_ts != event["ts"]
                and event.get("subtype") != "thread_broadcast"
            ):
                for content in (msg.content, *(p.content for p in msg.parts)):
                    if content.thread_root is None:
                        content.thread_root = RemoteMessageID(thread_ts)
            out.append(msg)
        return out


def _as_seen_by(receiver: str, msg: RemoteMessage) -> RemoteMessage:
    """A DM's message in one member's portal: its sender is "me" (the double puppet) only in
    their own portal, a ghost in the others' (as :meth:`DirectChats.copies` does live)."""
    sender = msg.sender
    if sender is None or not sender.is_me or sender.login_id == receiver:
        return msg
    return dataclasses.replace(msg, sender=dataclasses.replace(sender, is_me=False, login_id=None))


def _replied_since(message: dict[str, Any], floor: tuple[int, int]) -> bool:
    """Whether ``message`` is a thread root with a reply newer than ``floor``."""
    latest = message.get("latest_reply")
    return bool(message.get("reply_count")) and isinstance(latest, str) and ts_key(latest) > floor


def _messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The well-formed messages of an answer (a dict with a string ``ts``)."""
    items = data.get("messages")
    if not isinstance(items, list):
        return []
    return [m for m in items if isinstance(m, dict) and isinstance(m.get("ts"), str) and m["ts"]]


def _next_cursor(data: dict[str, Any]) -> str:
    meta = data.get("response_metadata")
    return str(meta.get("next_cursor") or "") if isinstance(meta, dict) else ""
