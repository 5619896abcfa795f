"""The whole contract between bridgekit and a network connector, in one file.

A connector author implements two classes:

* :class:`NetworkConnector` - one per bridge process. It names the network, validates its
  config section, says how remote ids become Matrix ids, offers login flows and turns a stored
  :class:`LoginInfo` into a live client.
* :class:`NetworkClient` - one per user login (an IRC connection, a Slack workspace token...)
  or one shared by every login (an XMPP component). It connects, disconnects and handles the
  Matrix events the runtime routes to it.

Everything optional is a *capability*: a mixin class in :mod:`bridgekit.contract.capabilities`,
re-exported here (``EditHandler``, ``ReactionHandler``...). The runtime detects capabilities
with ``isinstance`` and falls back where one is missing (an edit becomes a ``* new text``
message, a reaction is dropped with a notice...). Remote events flow the other way through
:meth:`BridgeAPI.queue_remote_event`, which stores them durably before returning, so a connector
that has queued an event may forget it.

The runtime owns ordering (per portal), persistence, retries, id mapping, permissions and
commands: connectors get those for free.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from .capabilities import (  # the optional half of the contract
    BACKWARD,
    CAPABILITIES,
    FORWARD,
    AliasResolver,
    AutoLogin,
    BackfillHandler,
    ChatIdParser,
    DefaultRelay,
    EditHandler,
    FetchResult,
    IdentifierResolver,
    MembershipHandler,
    ModeratesMessages,
    PresenceHandler,
    ReactionHandler,
    ReadReceiptHandler,
    RedactionHandler,
    RelayLineHandler,
    RelaysOwnUser,
    RendersRelaySender,
    ResolvedIdentifier,
    RoomCapabilities,
    RoomCapabilityHandler,
    RoomMetaHandler,
    SendRefused,
    ThirdPartyHandler,
    TypingHandler,
    capabilities_of,
)
from .events import (
    ChatInfo,
    MatrixMessage,
    PortalKey,
    RemoteChatID,
    RemoteEvent,
    RemoteMessageID,
    RemoteUserID,
    UserInfo,
)
from .ids import escape_localpart, template_regex, unescape_localpart
from .login import LoginField, LoginFlow, LoginInfo, LoginProcess, LoginStep
from .results import MessageResult

__all__ = [
    "BridgeAPI",
    "BridgeStateEvent",
    "Command",
    "CommandEvent",
    "CommandPortal",
    "Handler",
    "RemoteChatID",
    "RemoteMessageID",
    "RemoteUserID",
    "LoginInfo",
    "LoginFlow",
    "LoginField",
    "LoginStep",
    "LoginProcess",
    "NetworkConnector",
    "NetworkClient",
    "MessageResult",
    "EditHandler",
    "RedactionHandler",
    "ModeratesMessages",
    "RelayLineHandler",
    "RelaysOwnUser",
    "RendersRelaySender",
    "ReactionHandler",
    "TypingHandler",
    "ReadReceiptHandler",
    "MembershipHandler",
    "PresenceHandler",
    "RoomMetaHandler",
    "BackfillHandler",
    "FetchResult",
    "FORWARD",
    "BACKWARD",
    "AliasResolver",
    "AutoLogin",
    "ChatIdParser",
    "DefaultRelay",
    "ThirdPartyHandler",
    "IdentifierResolver",
    "ResolvedIdentifier",
    "RoomCapabilities",
    "RoomCapabilityHandler",
    "SendRefused",
    "MediaError",
    "CAPABILITIES",
    "capabilities_of",
]


class BridgeStateEvent(StrEnum):
    """The state of one login, as the management room and the status endpoint show it."""

    STARTING = "STARTING"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    TRANSIENT_DISCONNECT = "TRANSIENT_DISCONNECT"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"
    LOGGED_OUT = "LOGGED_OUT"
    UNKNOWN_ERROR = "UNKNOWN_ERROR"


class MediaError(Exception):
    """Media the runtime would not fetch or download (:meth:`BridgeAPI.fetch_media`,
    :meth:`BridgeAPI.download_media`): ``str(self)`` is short and safe to show in a room;
    ``too_large`` says it was refused for its size."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


# ---------------------------------------------------------------------------------------------
# What the runtime offers to connectors.


class BridgeAPI(ABC):
    """The runtime as a connector sees it. Obtained in :meth:`NetworkConnector.__init__`.

    Each connector gets its own, bound to its network (:attr:`network`): every lookup
    (``ghost_mxid``, ``find_message``...) is within that network, events queued are that
    network's, and a login id of another network is refused (``ValueError``). So with
    several networks in one process a connector cannot name another network's objects.
    """

    domain: str
    #: The name of the network this view is bound to (the connector's ``name``).
    network: str

    @abstractmethod
    async def queue_remote_event(self, login_id: str | None, event: RemoteEvent) -> None:
        """Store ``event`` durably and schedule it for its portal. Returns once it is stored."""

    def queue_remote_event_soon(self, login_id: str | None, event: RemoteEvent) -> None:
        """Queue ``event`` without waiting for it to be stored: for a connector reading a
        stream (IRC lines), where a task per event would cost more than the event itself.
        Events keep the order of the calls; the runtime logs a failure to store one."""
        task = asyncio.ensure_future(self.queue_remote_event(login_id, event))
        _soon_tasks.add(task)
        task.add_done_callback(_soon_done)

    @abstractmethod
    def report_state(
        self,
        login_id: str,
        state: BridgeStateEvent,
        message: str = "",
        error: str = "",
        *,
        notify: bool = True,
    ) -> None:
        """Tell the runtime (and so the user) how a login's connection is doing.
        ``notify=False``: the user was told already (a state the connector kept across a
        restart, such as credentials found dead before it): no notice again."""

    @abstractmethod
    async def get_kv(self, key: str) -> str | None:
        """A value the connector stored. Keys are this network's own (the runtime keeps each
        network's apart). State of one portal, ghost or login belongs in its typed metadata
        (:meth:`portal_metadata`...), which goes with the row; this is for the rest."""

    @abstractmethod
    async def set_kv(self, key: str, value: str | None) -> None: ...

    # Typed metadata (bridgekit/database/net_metadata.py): an instance of the connector's
    # ``portal_metadata_type`` / ``ghost_metadata_type`` / ``login_metadata_type`` per row.
    # Reads give a copy (defaults where nothing was stored); writes are durable when they return
    # and raise LookupError if the row is not stored (yet).

    async def portal_metadata(self, portal: PortalKey) -> Any:
        raise NotImplementedError

    async def set_portal_metadata(self, portal: PortalKey, value: Any) -> None:
        raise NotImplementedError

    async def ghost_metadata(self, remote_user_id: RemoteUserID) -> Any:
        raise NotImplementedError

    async def set_ghost_metadata(self, remote_user_id: RemoteUserID, value: Any) -> None:
        raise NotImplementedError

    async def login_metadata(self, login_id: str) -> Any:
        raise NotImplementedError

    async def set_login_metadata(self, login_id: str, value: Any) -> None:
        raise NotImplementedError

    @abstractmethod
    async def find_message(self, portal: PortalKey, remote_id: RemoteMessageID) -> str | None:
        """The Matrix event id bridged for a remote message id in this network's portal."""

    @abstractmethod
    async def find_remote_id(self, portal: PortalKey, event_id: str) -> str | None:
        """The remote message id a Matrix event was bridged to, if it is one of this network's
        portal's (event ids are global: an id taken from one chat may name another room's)."""

    async def has_room(self, portal: PortalKey) -> bool:
        """Whether this network's portal has a Matrix room: a change to a chat nobody bridged
        yet (a renamed channel, a member's new power) need not make its room."""
        return False

    @abstractmethod
    def ghost_mxid(self, remote_user_id: RemoteUserID) -> str:
        """The Matrix user id of the ghost for a remote user of this network."""

    async def portal_room(self, portal: PortalKey) -> str | None:
        """The Matrix room of one of this network's portals, if it has one yet (a network's
        mention of a chat becomes a link to its room)."""
        return None

    async def portal_of_room(self, room_id: str) -> PortalKey | None:
        """The portal of this network a Matrix room bridges, if any (a link to the room
        becomes the network's mention of the chat)."""
        return None

    @abstractmethod
    async def media_url(self, mxc: str, filename: str = "") -> str:
        """An HTTP(S) link to Matrix media that works for remote users without a token."""

    async def upload_media(self, data: bytes, mime_type: str, filename: str = "") -> str:
        """Upload bytes to the homeserver's media repository; returns the ``mxc://`` URI."""
        raise NotImplementedError

    async def fetch_media(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_size: int | None = None,
        follow_redirects: bool = True,
    ) -> tuple[bytes, str]:
        """The bytes and content type of a remote file, through the runtime's guarded fetcher
        (only addresses ``media.allow`` and the public internet, at most ``media.max_size``,
        ``media.timeout``). ``headers`` (a network's credentials for its file host) are sent
        only to the URL's own origin; ``max_size`` can only lower the cap; with
        ``follow_redirects`` False a redirect is refused. Raises :class:`MediaError`."""
        raise NotImplementedError

    async def download_media(self, mxc: str, max_size: int) -> tuple[bytes, str]:
        """The bytes and content type of Matrix media (``mxc://``), for networks that take
        files as bytes. Reads at most ``max_size`` bytes: :class:`MediaError` with
        ``too_large`` beyond that, :class:`MediaError` when the homeserver has no such media."""
        raise NotImplementedError

    def secret_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` derived from the appservice token (stable, private)."""
        raise NotImplementedError

    async def matrix_displayname(self, mxid: str) -> str | None:
        """The global display name of a Matrix user, if it can be found."""
        return None

    async def notify_user(self, user_mxid: str, text: str) -> bool:
        """A notice from the bridge bot in the user's management room (why a join failed,
        what a remote server refused); False if they have none."""
        return False

    async def notify_portal(self, portal: PortalKey, text: str) -> bool:
        """A notice from the bridge bot in a portal's room; False if it has no room yet."""
        return False

    async def invite_to_portal(
        self, login_id: str, portal: PortalKey, reason: str = ""
    ) -> str | None:
        """Bring a login's Matrix user to a portal: the room is created (with them invited)
        if it does not exist, otherwise the bridge bot invites them. Returns the room id.
        For remote invitations (an XMPP MUC invite, a Slack channel the user was added to)."""
        return None

    async def remove_from_portal(self, login_id: str, portal: PortalKey, reason: str) -> bool:
        """Take a login's Matrix user out of a portal's room because the remote side keeps
        them out of the chat (kicked, banned, refused at the door): the room shows no more
        than the network lets them see. The bridge bot kicks them with ``reason``. False if
        there is no room or they were not in it. The kick does not come back to the
        connector (the bot's events are the bridge's own): it has already left the chat."""
        return False

    async def add_login(self, login: LoginInfo) -> NetworkClient:
        """Store a new login of this network (``login.network`` must be it), make sure its
        Matrix user is known to the bridge, and connect it. For connectors that open a
        connection on demand (``irc join``, ``start-chat`` before any ``login``)."""
        raise NotImplementedError

    async def remove_login(self, login_id: str) -> None:
        """Disconnect and forget one of this network's logins (``irc quit``)."""
        raise NotImplementedError

    async def open_portal(
        self, portal: PortalKey, user_mxid: str, alias_localpart: str | None = None
    ) -> str | None:
        """Create the room of a portal shared by every login (no receiver), if it has none,
        and invite ``user_mxid`` to it; ``alias_localpart`` gives a new room its alias.
        Returns the room id, or None if no room could be made. For admin commands that
        bridge a remote chat on request (``xmpp-portal``)."""
        return None

    # -- ghost info (see RemoteUserInfoChange) -------------------------------------------------

    async def upload_avatar(self, data: bytes, mime_type: str) -> str:
        """An avatar the network gives as bytes (an XMPP vCard photo), as an ``mxc://`` URI to
        report in :class:`~bridgekit.contract.events.RemoteUserInfoChange`: the same image is
        uploaded once, whoever has it."""
        return await self.upload_media(data, mime_type, "avatar")

    async def ghost_is_bot(self, remote_user_id: RemoteUserID) -> bool:
        """Whether the network last reported this user as a bot (``is_bot``)."""
        return False


# ---------------------------------------------------------------------------------------------
# The connector.


class NetworkConnector(ABC):
    """One network. Found through the ``bridgekit.connectors`` entry point group."""

    #: Short lowercase id, used in commands (`login irc`), ids and config (`networks.irc`).
    name: ClassVar[str]
    #: Human name, shown in help and room bridge-info.
    display_name: ClassVar[str]
    #: Ghost localpart template; ``{id}`` is the escaped remote user id.
    ghost_template: ClassVar[str] = "_{network}_{id}"
    #: Alias localpart template for portals created on demand; ``{id}`` is the escaped chat id.
    alias_template: ClassVar[str | None] = None
    #: Defaults for this connector's config section.
    default_config: ClassVar[Mapping[str, Any]] = {}
    #: Whether plain lines of one sender that queue up behind a slow homeserver may go out as
    #: one Matrix event (see :mod:`bridgekit.outbox.coalesce`). Right for line-based networks (IRC,
    #: where a paste is many lines); wrong where each message can be edited on its own.
    merge_backlog: bool = False
    #: Dataclasses of this connector's typed metadata per row (see BridgeAPI.portal_metadata
    #: and bridgekit/database/net_metadata.py): a ``VERSION`` class attribute (default 1) and an
    #: optional ``upgrade_metadata(data, version)`` classmethod for rows an older version wrote.
    portal_metadata_type: ClassVar[type | None] = None
    ghost_metadata_type: ClassVar[type | None] = None
    login_metadata_type: ClassVar[type | None] = None

    def __init__(self, bridge: BridgeAPI, config: Mapping[str, Any]) -> None:
        self.bridge = bridge
        self.config = config

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Problems in this connector's config section, as ``(key, why)`` pairs."""
        return []

    @classmethod
    def namespace_templates(cls, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(ghost localpart templates, alias localpart templates) for the registration."""
        ghosts = [cls.ghost_template.replace("{network}", cls.name)]
        aliases = [cls.alias_template.replace("{network}", cls.name)] if cls.alias_template else []
        return ghosts, aliases

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start shared resources (a component connection, an HTTP server...)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop shared resources. Clients are disconnected before this is called."""

    def login_flows(self) -> list[LoginFlow]:
        return []

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        raise NotImplementedError(f"{self.name} has no login flows")

    @abstractmethod
    async def load_login(self, login: LoginInfo) -> NetworkClient:
        """Make a client for a stored login. Do not connect yet: the runtime calls connect."""

    async def logout(self, login: LoginInfo) -> None:  # noqa: B027 - optional hook
        """Invalidate remote credentials when a user logs out (where the network can)."""

    def commands(self) -> list[Command]:
        """Extra management-room commands (`irc nick`, ...)."""
        return []

    def ghost_localpart(self, remote_user_id: RemoteUserID) -> str:
        """The localpart of a remote user's ghost. Must be injective and reversible."""
        template = self.namespace_templates(self.config)[0][0]
        return template.replace("{id}", escape_localpart(remote_user_id))

    def ghost_remote_id(self, localpart: str) -> RemoteUserID | None:
        """Inverse of :meth:`ghost_localpart`: the remote user id, or None if not ours."""
        patterns = self.__dict__.get("_ghost_patterns")
        if patterns is None:
            templates = self.namespace_templates(self.config)[0]
            patterns = self.__dict__["_ghost_patterns"] = [template_regex(t) for t in templates]
        for pattern in patterns:
            m = pattern.match(localpart)
            if m and "id" in m.groupdict():
                remote = unescape_localpart(m.group("id"))
                if remote is not None:
                    return RemoteUserID(remote)
        return None


class NetworkClient(ABC):
    """One live login to the network. Must be fast to construct; ``connect`` does the work."""

    login: LoginInfo

    def __init__(self, connector: NetworkConnector, login: LoginInfo) -> None:
        self.connector = connector
        self.login = login

    @abstractmethod
    async def connect(self) -> None:
        """Connect and report state. Should not raise on network errors: report and retry."""

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        """Send a Matrix message to the network. Raise to have the user notified."""

    @abstractmethod
    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        """Name, topic, members... of a remote chat, to create or resync its portal room."""

    async def get_user_info(self, remote_user_id: RemoteUserID) -> UserInfo | None:
        """Display name and avatar of a remote user, for their ghost."""
        return None

    def is_in_portal(self, portal: PortalKey) -> bool:
        """Whether this login can send to ``portal`` (for routing Matrix messages)."""
        return not portal.receiver or portal.receiver == self.login.id


# ---------------------------------------------------------------------------------------------
# Optional capabilities: bridgekit/contract/capabilities.py (re-exported here).


CommandHandler = Callable[..., Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# Commands: what a connector declares (:meth:`NetworkConnector.commands`) and what its handler
# receives. Here, not in commands.py (which re-exports them), because they and the classes
# above name each other: ``commands()`` returns :class:`Command`s, whose handlers get a
# :class:`CommandEvent` carrying the connector's :class:`BridgeAPI`.


class CommandPortal(Protocol):
    """The portal a command was sent in, as a command may read it."""

    @property
    def network(self) -> str: ...

    @property
    def key(self) -> PortalKey: ...

    @property
    def mxid(self) -> str | None: ...


@dataclass
class CommandEvent:
    #: A connector's command gets that connector's network-bound :class:`BridgeAPI` (its
    #: ``NetworkBridge``), so it reaches the runtime only through the contract, never its
    #: portals, Matrix client or store. (The runtime's own commands, which belong to no
    #: network, get the runtime's subclass of this event instead.)
    bridge: BridgeAPI
    room_id: str
    sender: str
    command: str
    args: list[str]
    raw_args: str
    level: int
    portal: CommandPortal | None
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
    #: redacted (see :mod:`bridgekit.commands.command_secrets`). A callable decides per use
    #: (``irc storepass``).
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


_soon_tasks: set[asyncio.Future[None]] = set()


def _soon_done(task: asyncio.Future[None]) -> None:
    _soon_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("bridgekit.contract.connector").error(
            "Could not queue a remote event: %s", task.exception()
        )
