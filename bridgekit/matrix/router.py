"""Routes each Matrix event from a transaction to commands, a portal, or nowhere.

Order of checks matters for safety: our own ghosts and echoes of double-puppeted messages are
dropped first (no loops); then users the config does not permit are ignored, with a log line and
their invites rejected; only then do commands and portals see the event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mautrix.types import Event

from ..commands.command_secrets import NO_POWER_HINT, can_redact
from ..contract.connector import PresenceHandler
from ..contract.events import MatrixPresence
from ..contract.ids import server_of
from ..database.records import LRU
from .bot_rooms import BotRooms
from .client import with_retries
from .fields import NOTICE_TYPES, MalformedEvent, check_event

if TYPE_CHECKING:
    from ..commands.processor import CommandProcessor
    from ..commands.runtime import LoginLookups, SendNotice
    from ..database.store import Store
    from ..metrics import Metrics
    from ..portal.matrix_to_remote import MatrixToRemote
    from ..portal.upgrades import RoomUpgrades
    from .client import MatrixClient

log = logging.getLogger("bridgekit.matrix.router")

DOUBLE_PUPPET_KEY = "fi.mau.double_puppet_source"
LEVELS = {"relay": 1, "user": 2, "admin": 3}
#: State events the mautrix state store keeps (the intents read membership and power levels).
_STATE_TYPES = frozenset({"m.room.member", "m.room.power_levels"})
#: State end-to-bridge encryption follows: a room's encryption, and who gets its room keys.
_CRYPTO_STATE_TYPES = frozenset({"m.room.encryption", "m.room.member"})
#: An encrypted room event (its type and content are inside the ciphertext).
ENCRYPTED = "m.room.encrypted"
#: Seconds between two notices (and INFO lines) about one sender's malformed events in a room.
MALFORMED_TELL_INTERVAL = 60.0


class RouterCrypto(Protocol):
    """End-to-bridge encryption as the router sees it (bridgekit/crypto/service.py)."""

    async def on_state(self, evt: dict[str, Any]) -> None: ...

    def refuses_plaintext(self, evt: dict[str, Any]) -> bool: ...


class MatrixRouter:
    def __init__(
        self,
        *,
        permission_for: Callable[[str], str | None],
        store: Store,
        matrix: MatrixClient,
        commands: CommandProcessor,
        matrix_to_remote: MatrixToRemote,
        upgrades: RoomUpgrades,
        logins: LoginLookups,
        connector_for_ghost: Callable[[str], object | None],
        send_notice: SendNotice,
        metrics: Metrics,
        crypto: RouterCrypto | None = None,
    ) -> None:
        self.permission_for = permission_for
        self.store = store
        self.matrix = matrix
        self.commands = commands
        self.matrix_to_remote = matrix_to_remote
        self.upgrades = upgrades
        self.logins = logins
        self.connector_for_ghost = connector_for_ghost
        self.send_notice = send_notice
        self.metrics = metrics
        self.crypto = crypto
        self._levels: dict[str, int] = {}
        self._ours = LRU(50_000)
        self._malformed_told = LRU(10_000)  # (room, sender, noticed) -> when last told
        #: Where encrypted events are decrypted (only with encryption; loaded at start).
        self.bot_rooms = BotRooms(matrix.bot_mxid)

    def level_of(self, mxid: str) -> int:
        level = self._levels.get(mxid)
        if level is None:
            level = LEVELS.get(self.permission_for(mxid) or "", 0)
            if len(self._levels) > 100_000:
                self._levels.clear()
            self._levels[mxid] = level
        return level

    def wants(self, evt: dict[str, Any]) -> bool:
        """Cheap, synchronous: could this event matter? (No SQL: in-memory indexes only.)

        Membership and power levels always matter (room state, invites to the bot). Anything
        else matters in portals and management rooms, or when it is a command elsewhere. An
        encrypted event elsewhere cannot say whether it is a command until decrypted: it is
        wanted in the rooms the bot is joined to (it holds their keys; see bot_rooms.py), and
        this is asked again of what it decrypts to (outbox/transactions.py).
        """
        room_id = evt.get("room_id")
        etype = evt.get("type")
        if not isinstance(room_id, str) or not isinstance(etype, str):
            return False
        if etype in ("m.room.member", "m.room.power_levels"):
            if self.crypto is not None:
                self.bot_rooms.see(evt)  # in transaction order: see BotRooms
            return True
        if etype == "m.room.encryption" and self.crypto is not None:
            return True
        store = self.store
        if store.is_portal_room(room_id) or room_id in store.management_rooms:
            # ... unless it is the echo of what the bot or a ghost sent (handle_event would
            # ignore it): a transaction of only such echoes then needs no write at all.
            sender = evt.get("sender")
            return not (isinstance(sender, str) and self.is_ours(sender))
        if etype == "m.room.message":
            content = evt.get("content")
            body = content.get("body") if isinstance(content, dict) else None
            return isinstance(body, str) and body.startswith(self.commands.prefix)
        if etype == ENCRYPTED and self.crypto is not None and room_id in self.bot_rooms:
            sender = evt.get("sender")
            return isinstance(sender, str) and not self.is_ours(sender)
        return False

    def serves(self, room_id: str) -> bool:
        """A portal or a management room (elsewhere only commands are looked at)."""
        return self.store.is_portal_room(room_id) or room_id in self.store.management_rooms

    async def load_bot_rooms(self) -> None:
        """At start, before any transaction: the rooms the bot is joined to (where encrypted
        events are decrypted), from the homeserver."""
        bot = self.matrix.bot
        assert bot is not None
        await self.bot_rooms.load(
            lambda: with_retries(
                bot.get_joined_rooms, what="listing the bot's rooms", max_attempts=5, cap=10
            )
        )
        log.debug("The bot is joined to %d room(s)", len(self.bot_rooms))

    def is_ours(self, mxid: str) -> bool:
        """The bot or one of our ghosts (never treat their events as user input)."""
        ours = self._ours.get(mxid)
        if ours is None:
            ours = mxid == self.matrix.bot_mxid or self.connector_for_ghost(mxid) is not None
            self._ours.put(mxid, ours)
        return ours

    async def _update_state_store(self, evt: dict[str, Any]) -> None:
        if "state_key" not in evt or evt.get("type") not in _STATE_TYPES:
            return
        try:
            await self.matrix.state_store.update_state(Event.deserialize(evt))
        except Exception:  # malformed state must not block the room
            log.debug("Could not parse state event %s", evt.get("event_id"))

    async def handle_event(self, evt: dict[str, Any], replay: bool = False) -> None:
        """Handle one event; ``replay``: it may have been handled before a crash."""
        etype = evt.get("type")
        sender = evt.get("sender")
        room_id = evt.get("room_id")
        if (
            not isinstance(etype, str)
            or not isinstance(sender, str)
            or not isinstance(room_id, str)
        ):
            return
        if etype in _STATE_TYPES:
            await self._update_state_store(evt)
        if self.crypto is not None and etype in _CRYPTO_STATE_TYPES and "state_key" in evt:
            await self.crypto.on_state(evt)
        content = evt.get("content")
        if not isinstance(content, dict):
            return
        if content.get(DOUBLE_PUPPET_KEY) == self.matrix.bridge_id:
            return  # our own double-puppeted message coming back
        if etype == "m.room.member" and evt.get("state_key") == self.matrix.bot_mxid:
            await self._bot_membership(evt, sender, room_id, content)
            return
        if self.is_ours(sender):
            return
        level = self.level_of(sender)
        portal = await self.store.get_portal_by_mxid(room_id)
        relates = content.get("m.relates_to")
        is_edit = isinstance(relates, dict) and relates.get("rel_type") == "m.replace"
        if etype == "m.room.tombstone":
            # The room's power levels, not the bridge's permissions, decide who may move it.
            if portal is not None and evt.get("state_key") == "":
                await self.upgrades.follow(portal, evt)
            return
        if etype == "m.room.message" and not is_edit:
            body = content.get("body")
            commands = self.commands
            if (
                isinstance(body, str)
                # what maybe_handle looks at first, without a coroutine per message
                and (
                    room_id in self.store.management_rooms
                    or body.strip().startswith(commands.prefix)
                )
                and await commands.maybe_handle(room_id, evt, body, level, portal)
            ):
                return
        elif is_edit and await self.commands.secret_in_edit(room_id, evt, level):
            return
        if portal is None:
            return
        if level == 0:
            log.info("Ignoring %s from %s: not permitted by the config", etype, sender)
            return
        if self.crypto is not None and self.crypto.refuses_plaintext(evt):
            await self._refuse_malformed(
                evt, sender, room_id, "this room is encrypted and the bridge requires encryption"
            )
            return
        try:
            check_event(evt)
        except MalformedEvent as e:
            await self._refuse_malformed(evt, sender, room_id, str(e))
            return
        await self.matrix_to_remote.handle_matrix_event(portal, evt, level, replay)

    async def _refuse_malformed(
        self, evt: dict[str, Any], sender: str, room_id: str, why: str
    ) -> None:
        """A metric, and for what the sender wrote a notice (it won't arrive) and a log line,
        once a minute per sender and room: a client sending junk in a loop must not make the
        bot post (or the log grow) once per event."""
        etype = evt["type"]
        self.metrics.error("malformed_event")
        notice = etype in NOTICE_TYPES
        key, now = (room_id, sender, notice), time.monotonic()
        last = self._malformed_told.get(key)
        if last is not None and now - last < MALFORMED_TELL_INTERVAL:
            log.debug("Refusing %s %r from %s: %s", etype, evt.get("event_id"), sender, why)
            return
        self._malformed_told.put(key, now)
        log.info("Refusing %s %r from %s: %s", etype, evt.get("event_id"), sender, why)
        if notice:
            await self.send_notice(
                room_id,
                f"{sender}: your {etype} was not bridged: {why} (said once a minute at most)",
            )

    async def _bot_membership(
        self, evt: dict[str, Any], sender: str, room_id: str, content: dict[str, Any]
    ) -> None:
        if content.get("membership") != "invite":
            return
        bot = self.matrix.bot
        assert bot is not None
        level = self.level_of(sender)
        if level < LEVELS["user"]:
            log.info("Rejecting invite from %s to %s: not permitted by the config", sender, room_id)
            try:
                await bot.leave_room(room_id, reason="You are not allowed to use this bridge")
            except Exception:
                log.debug("Could not reject invite to %s", room_id)
            return
        try:
            await bot.join_room(room_id)
        except Exception:
            log.exception("Could not join %s after an invite from %s", room_id, sender)
            return
        self.bot_rooms.joined(room_id)
        if await self.upgrades.joined(room_id):
            return  # the replacement of an upgraded portal room
        # Only a direct chat becomes the management room: a room invited to for plumbing
        # (`bridge <network> <id>`) must keep needing the command prefix.
        if content.get("is_direct"):
            user = await self.commands.get_or_create_user(sender)
            user.management_room = room_id
            welcome = (
                "Hello, I'm the bridge bot. This is now your management room: send `help` "
                "to see what I can do."
            )
            # The user made this room: the bot removes the secrets sent here (passwords,
            # tokens) only if the room gave it that power; if not, it says so once.
            if not await can_redact(self.matrix, room_id):
                welcome += "\n" + NO_POWER_HINT
                user.metadata["no_redact_told"] = room_id
            await self.store.save_user(user)
            await self.send_notice(room_id, welcome)

    async def handle_ephemeral(self, evt: dict[str, Any]) -> None:
        etype = evt.get("type")
        room_id = evt.get("room_id")
        content = evt.get("content")
        if etype == "m.presence" and isinstance(content, dict):
            await self._presence(evt.get("sender"), content)
            return
        if not isinstance(room_id, str) or not isinstance(content, dict):
            return
        portal = await self.store.get_portal_by_mxid(room_id)
        if portal is None:
            return
        if etype == "m.typing":
            users = content.get("user_ids")
            if isinstance(users, list):
                await self.matrix_to_remote.handle_matrix_typing(
                    portal, [u for u in users if isinstance(u, str) and not self.is_ours(u)]
                )
        elif etype == "m.receipt":
            for event_id, receipts in content.items():
                if not isinstance(receipts, dict):
                    continue
                for user_id in (receipts.get("m.read") or {}).keys():
                    if (
                        isinstance(user_id, str)
                        and not self.is_ours(user_id)
                        and self.level_of(user_id) > 0
                        and server_of(user_id)
                    ):
                        await self.matrix_to_remote.handle_matrix_receipt(portal, user_id, event_id)

    async def _presence(self, sender: Any, content: dict[str, Any]) -> None:
        if not isinstance(sender, str) or self.is_ours(sender) or self.level_of(sender) < 2:
            return
        presence = content.get("presence")
        if not isinstance(presence, str):
            return
        status = content.get("status_msg")
        change = MatrixPresence(sender, presence, status if isinstance(status, str) else None)
        for client in self.logins.clients_of(sender):
            if isinstance(client, PresenceHandler):
                await client.handle_matrix_presence(change)
