"""The optional half of the connector contract: capabilities, detected with ``isinstance``.

A :class:`~bridgekit.contract.connector.NetworkClient` (or the connector, for the connector-level
ones) mixes in what its network can do; the runtime falls back where one is missing (an edit becomes
a ``* new text`` message, a reaction is dropped...). Re-exported by
:mod:`bridgekit.contract.connector`, so connectors import everything from there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import (
    MatrixEdit,
    MatrixMembership,
    MatrixPresence,
    MatrixReaction,
    MatrixReactionRemove,
    MatrixReadReceipt,
    MatrixRedaction,
    MatrixRoomMeta,
    MatrixTyping,
    PortalKey,
    RemoteMessage,
    RemoteMessageID,
    RemoteUserID,
)
from .login import LoginInfo
from .results import MessageResult


class EditHandler(ABC):
    @abstractmethod
    async def handle_matrix_edit(self, edit: MatrixEdit) -> MessageResult | None: ...


class RelayLineHandler(ABC):  # noqa: B024 - a capability without methods of its own
    """The connector labels relayed messages itself: it puts ``msg.relay.line(text)`` on
    every line it sends of a :class:`MatrixMessage` whose ``relay`` is set (after wrapping
    long lines, which only it knows how to do), and the runtime leaves the content as it is.
    Without this capability the runtime labels every line of the body before the call."""


class RendersRelaySender(ABC):  # noqa: B024 - a capability without methods of its own
    """The network shows each message's sender name and avatar itself (Discord webhooks, Slack
    ``username`` / ``icon_url``): a relayed :class:`MatrixMessage` (and, for an
    :class:`EditHandler`, a relayed :class:`MatrixEdit`) comes with ``relay_sender`` set and its
    content untouched (no label, formatting and emotes kept), instead of labelled lines."""


class RedactionHandler(ABC):
    @abstractmethod
    async def handle_matrix_redaction(self, redaction: MatrixRedaction) -> None: ...


class ModeratesMessages(ABC):  # noqa: B024 - a capability without methods of its own
    """A :class:`RedactionHandler` whose network lets moderators delete others' messages
    (Discord's Manage Messages): a Matrix redaction of another's bridged message (the
    homeserver allowed it: the redactor has the room's power to redact) is handed over with
    ``by_moderator`` set, to delete or refuse (:class:`SendRefused`). Without it such a
    redaction stays on Matrix."""


class ReactionHandler(ABC):
    @abstractmethod
    async def handle_matrix_reaction(self, reaction: MatrixReaction) -> MessageResult | None: ...

    @abstractmethod
    async def handle_matrix_reaction_remove(self, removal: MatrixReactionRemove) -> None: ...


class TypingHandler(ABC):
    @abstractmethod
    async def handle_matrix_typing(self, typing: MatrixTyping) -> None: ...


class ReadReceiptHandler(ABC):
    @abstractmethod
    async def handle_matrix_read_receipt(self, receipt: MatrixReadReceipt) -> None: ...


class PresenceHandler(ABC):
    @abstractmethod
    async def handle_matrix_presence(self, presence: MatrixPresence) -> None:
        """The logged-in Matrix user's presence changed."""


class MembershipHandler(ABC):
    @abstractmethod
    async def handle_matrix_membership(self, change: MatrixMembership) -> None: ...


class RoomMetaHandler(ABC):
    @abstractmethod
    async def handle_matrix_room_meta(self, change: MatrixRoomMeta) -> None:
        """Room name, topic or avatar changed on Matrix."""


#: Directions of :meth:`BackfillHandler.fetch_messages`.
FORWARD = "forward"
BACKWARD = "backward"


@dataclass
class FetchResult:
    """One page of a chat's history, for :meth:`BackfillHandler.fetch_messages`."""

    #: Oldest first, whatever the direction. Threads: a message in a thread names its root in
    #: ``content.thread_root`` as a live one does (the root must come before it, or be bridged).
    messages: list[RemoteMessage] = field(default_factory=list)
    #: Where the next call in the same direction goes on from (opaque to the runtime, which
    #: keeps it across restarts); None: from the messages' own ids.
    cursor: str | None = None
    #: The network has more in that direction (another call with ``cursor`` would find some).
    has_more: bool = False


class BackfillHandler(ABC):
    """A network that can hand over a chat's history: catch-up after an outage (forward, when
    a login connects or the bridge starts) and history when a portal is created (backward).
    Configured by ``bridge.backfill`` (limits; 0 turns a direction off). The runtime pages,
    dedupes by remote message id and sends through the portal's ordered queue, with each
    message's ``timestamp`` as its Matrix time; the connector only fetches."""

    @abstractmethod
    async def fetch_messages(
        self,
        portal: PortalKey,
        anchor: RemoteMessageID | None,
        direction: str,
        limit: int,
        cursor: str | None = None,
    ) -> FetchResult:
        """Up to ``limit`` messages of ``portal``, oldest first.

        ``FORWARD``: those newer than ``anchor``, the newest message bridged (None: nothing
        was; a network may then answer with nothing). ``BACKWARD``: the newest ``limit`` of
        those older than ``anchor`` (None: older than now). A ``cursor`` from the previous
        answer in the same direction replaces ``anchor`` as the place to go on from."""

    async def catch_up_queued(self) -> None:  # noqa: B027 - an optional hook
        """Called after this login (re)connected, once the runtime has queued its catch-ups
        (or found none due, or catch-up is off). Live events the connector queues from now on
        wait behind them in each portal's queue: a connector that held live events back until
        then (so that nothing said later reaches Matrix before what was said earlier, and no
        catch-up starts from an anchor newer than what it missed) may let them go."""


class AliasResolver(ABC):
    """Connector-level: lets joining ``#<alias template>`` create a portal on demand."""

    @abstractmethod
    async def resolve_alias(self, alias_localpart: str) -> tuple[PortalKey, str | None] | None:
        """Portal key (and login id to create it with, or None) for an alias, or None."""


class AutoLogin(ABC):
    """Connector-level: networks where speaking in a portal is enough to get a connection.

    IRC works this way: a permitted Matrix user who talks in a channel portal gets their own
    puppeted IRC connection without a ``login`` command. The runtime calls this when such a
    user has no login for the portal's network; the login returned is stored and connected.
    """

    @abstractmethod
    async def auto_login(self, user_mxid: str, portal: PortalKey) -> LoginInfo | None: ...


class DefaultRelay(ABC):
    """Connector-level: a login that relays a portal nobody set a relay for.

    A Slack or Discord workspace's app (its bot) is in every channel of the workspace and shows
    a relayed sender's name itself: every portal of the workspace has a relay without a
    ``set-relay``. The runtime asks when a Matrix user without a login speaks in a portal
    whose ``relay_login`` is unset (``set-relay`` still takes precedence).
    """

    @abstractmethod
    def default_relay_login(self, portal: PortalKey) -> str | None:
        """The id of a connected login that relays ``portal``, or None."""


class RelaysOwnUser(ABC):  # noqa: B024 - a capability without methods of its own
    """Client-level: a login whose account is a bot (a Discord bot): its own Matrix user's
    messages are relayed through it like anyone else's (their Matrix name and avatar, through
    a :class:`RendersRelaySender` client), not sent as the bot account itself, which would
    show the bot's name for a person."""


class ChatIdParser(ABC):
    """Connector-level: checks and canonicalises a chat id a person typed.

    ``bridge <network> <chat id>`` hands the typed text here, so ``#Chan`` and ``#chan`` plumb the
    same portal on a case-insensitive network and a look-alike id is refused instead of
    creating a portal nobody can reach. Without this capability the text is used as typed.
    """

    @abstractmethod
    def parse_chat_id(self, text: str) -> PortalKey:
        """The portal key for ``text``; raise ``ValueError("why")`` if it names no valid chat."""


class SendRefused(Exception):
    """Raised by a connector that knows why the network did not take a Matrix event: the
    sender's client shows ``str(self)`` as the failure and ``reason`` (a
    ``com.beeper.message_send_status`` reason such as ``m.no_permission``), and
    ``retriable`` says whether sending again may work."""

    def __init__(
        self, message: str, reason: str = "m.foreign_network_error", retriable: bool = False
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retriable = retriable


@dataclass
class RoomCapabilities:
    """What one portal allows this login to send, checked by the runtime before the call:
    what the room refuses gets a failed message status at once, never a failed send."""

    read_only: bool = False  # nothing may be sent (a moderated channel without voice...)
    read_only_reason: str = "this room is read-only for you"
    edits: bool = True  # False: edits are refused (not even the ``* text`` fallback)
    edit_max_age: float | None = None  # seconds after the message within which it may change
    reactions: bool = True
    redactions: bool = True
    max_file_size: int | None = None  # bytes, of a file the sender's client declares
    formatting: bool = True  # False: only the plain body is handed over (no ``html``)


class RoomCapabilityHandler(ABC):
    """Per-portal limits (see :class:`RoomCapabilities`), asked before every Matrix message,
    edit, reaction and redaction; cheap and synchronous: from what the client already knows."""

    @abstractmethod
    def room_capabilities(self, portal: PortalKey) -> RoomCapabilities: ...


@dataclass
class ResolvedIdentifier:
    """A remote user found from what a person typed (a nick, a JID), and how to reach them."""

    #: The Matrix user's login the chat goes through (the runtime checks it is theirs).
    login_id: str
    user_id: RemoteUserID
    name: str = ""
    #: Their 1:1 chat, when resolving already knows it; otherwise :meth:`create_dm` is asked.
    chat: PortalKey | None = None


class IdentifierResolver(ABC):
    """Connector-level: lets ``start-chat <network> <identifier>`` (alias ``pm``) open a 1:1
    chat. Connector-level rather than per login because the connector knows which of the
    user's logins reaches the identifier (an IRC nick of which server) and may have to make
    one first (IRC and XMPP connect users on demand)."""

    @abstractmethod
    async def resolve_identifier(
        self, user_mxid: str, identifier: str
    ) -> ResolvedIdentifier | None:
        """The remote user ``identifier`` names, for ``user_mxid``, or None if the network
        says there is no such user. Raise ``ValueError("why")`` if it is not an identifier
        of this network at all (a malformed nick, a JID of the bridge itself)."""

    async def create_dm(self, resolved: ResolvedIdentifier) -> PortalKey:
        """The portal key of the 1:1 chat with a resolved user (made on the network if it
        needs making). The default is ``resolved.chat``."""
        if resolved.chat is None:
            raise NotImplementedError(f"{type(self).__name__} resolved no chat")
        return resolved.chat


class ThirdPartyHandler(ABC):
    """Connector-level: answers the homeserver's third-party lookups."""

    @abstractmethod
    def protocol_info(self) -> dict[str, Any]: ...

    async def lookup_location(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        return []

    async def lookup_user(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        return []


CAPABILITIES: dict[str, type] = {
    "edits": EditHandler,
    "redactions": RedactionHandler,
    "reactions": ReactionHandler,
    "typing": TypingHandler,
    "read_receipts": ReadReceiptHandler,
    "membership": MembershipHandler,
    "presence": PresenceHandler,
    "room_meta": RoomMetaHandler,
    "backfill": BackfillHandler,
    "room_capabilities": RoomCapabilityHandler,
}


def capabilities_of(client: object) -> set[str]:
    """Names of the optional capabilities an object implements."""
    return {name for name, cls in CAPABILITIES.items() if isinstance(client, cls)}
