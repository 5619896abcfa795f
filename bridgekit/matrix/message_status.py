"""What became of a Matrix event the runtime handed a connector, told to the sender's client.

The ``com.beeper.message_send_status`` event is the format mautrix bridgev2 sends and clients
already read (Beeper and others show a failed or delivered mark on the message). Like bridgev2
it is off by default (``bridge.message_status_events``); a failure is also said as a notice
line in the room (``bridge.message_error_notices``, on by default) for clients that show no
status events. What a room does not allow (the connector's :class:`RoomCapabilities`) is
checked here too, before the connector is called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..contract.connector import RoomCapabilities, RoomCapabilityHandler
from .client import message_type

if TYPE_CHECKING:
    from ..contract.connector import NetworkClient
    from ..contract.events import MessageContent
    from ..database.records import MessageRow
    from ..objects.portal import Portal
    from ..settings import BridgeSettings
    from .client import MatrixClient

log = logging.getLogger("bridgekit.matrix.message_status")

EVENT_TYPE = "com.beeper.message_send_status"


class Status(StrEnum):
    SUCCESS = "SUCCESS"
    PENDING = "PENDING"
    RETRIABLE = "FAIL_RETRIABLE"
    FAIL = "FAIL_PERMANENT"


class Reason(StrEnum):
    GENERIC = "m.event_not_handled"
    UNSUPPORTED = "com.beeper.unsupported_event"
    TOO_OLD = "m.event_too_old"
    NETWORK_ERROR = "m.foreign_network_error"
    NO_PERMISSION = "m.no_permission"
    BRIDGE_UNAVAILABLE = "m.bridge_unavailable"


#: What the notice calls each kind of event ("your reaction was not delivered").
KINDS = {"m.reaction": "reaction", "m.room.redaction": "redaction", "m.sticker": "sticker"}


def status_content(
    network: str,
    event_id: str,
    status: Status,
    reason: str | None = None,
    message: str | None = None,
    internal_error: str | None = None,
) -> dict[str, Any]:
    """The event content, field for field as bridgev2's ``ToMSSEvent`` (empty ones left out)."""
    content: dict[str, Any] = {
        "m.relates_to": {"rel_type": "m.reference", "event_id": event_id},
        "network": network,
        "status": str(status),
    }
    if reason:
        content["reason"] = str(reason)
    if message:
        content["message"] = message
    if internal_error:
        content["internal_error"] = internal_error
    return content


class StatusReporter:
    """Sends the status event and, for a failed message or edit, the notice."""

    def __init__(
        self,
        matrix: MatrixClient,
        settings: BridgeSettings,
        send_notice: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self.matrix = matrix
        self.settings = settings
        self.send_notice = send_notice
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def events_enabled(self) -> bool:
        return self.settings.message_status_events

    async def report(
        self,
        portal: Portal,
        evt: dict[str, Any],
        status: Status,
        reason: str | None = None,
        message: str | None = None,
        *,
        notice: bool = False,
        internal_error: str | None = None,
    ) -> None:
        """Tell the sender of ``evt`` how it went. ``notice``: also say a failure as a line
        in the room (messages and edits; a refused reaction is not worth a line)."""
        room_id = portal.mxid or evt.get("room_id")
        if not room_id:
            return
        if self.events_enabled:
            content = status_content(
                portal.network, evt["event_id"], status, reason, message, internal_error
            )
            # In the background, as bridgev2 does: the room's next event need not wait for it.
            task = asyncio.create_task(self._send(room_id, content))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        failed = status in (Status.FAIL, Status.RETRIABLE)
        if notice and failed and self.settings.message_error_notices:
            await self.send_notice(room_id, f"{evt['sender']}: {message}")

    async def _send(self, room_id: str, content: dict[str, Any]) -> None:
        bot = self.matrix.bot
        assert bot is not None
        try:
            etype, content = await self.matrix.prepare_event(room_id, EVENT_TYPE, content)
            await bot.send_message_event(room_id, message_type(etype), content)
        except Exception as e:
            event_id = content["m.relates_to"]["event_id"]
            log.warning("Could not send the status of %s: %s", event_id, e)


# Per-room capabilities: what a portal refuses before the connector is called.


def room_capabilities(client: NetworkClient, portal: Portal) -> RoomCapabilities:
    """What the room allows ``client`` (everything, for a client that does not say)."""
    if isinstance(client, RoomCapabilityHandler):
        return client.room_capabilities(portal.key)
    return RoomCapabilities()


def refused_message(caps: RoomCapabilities, mc: MessageContent) -> tuple[str, str] | None:
    """(reason, why) if the room does not take this message, else None."""
    if caps.read_only:
        return Reason.NO_PERMISSION, caps.read_only_reason
    size = (mc.media_info or {}).get("size") if mc.media_url else None
    if (
        caps.max_file_size is not None
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size > caps.max_file_size
    ):
        return Reason.UNSUPPORTED, f"the file is larger than {caps.max_file_size} bytes"
    return None


def refused_edit(
    caps: RoomCapabilities, evt: dict[str, Any], target: MessageRow
) -> tuple[str, str] | None:
    """(reason, why) if the room does not take this edit of ``target``, else None."""
    if caps.read_only:
        return Reason.NO_PERMISSION, caps.read_only_reason
    if not caps.edits:
        return Reason.UNSUPPORTED, "messages cannot be edited here"
    age = ((evt.get("origin_server_ts") or 0) - target.ts) / 1000
    if caps.edit_max_age is not None and target.ts and age > caps.edit_max_age:
        limit = int(caps.edit_max_age)
        return Reason.UNSUPPORTED, f"messages can be edited for {limit} seconds only here"
    return None
