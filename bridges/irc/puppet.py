"""One Matrix user's IRC presence: a puppeted connection plus the channel state it sees.

:class:`IRCClient` is the :class:`~bridgekit.contract.connector.NetworkClient` of the IRC connector.
Incoming lines are turned into remote events by :class:`~bridges.irc.handlers.IncomingMixin`;
Matrix events become lines in :class:`~bridges.irc.outgoing.OutgoingMixin` (memberships and
topics in :class:`~bridges.irc.channel_changes.ChannelChangesMixin`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridgekit.contract.connector import (
    BackfillHandler,
    BridgeStateEvent,
    EditHandler,
    LoginInfo,
    MembershipHandler,
    NetworkClient,
    ReactionHandler,
    RelayLineHandler,
    RoomCapabilities,
    RoomCapabilityHandler,
    RoomMetaHandler,
    TypingHandler,
)
from bridgekit.contract.events import (
    ChatInfo,
    ChatMember,
    PortalKey,
    RemoteEvent,
    SpaceInfo,
    UserInfo,
)

from . import nickserv
from .channel_changes import ChannelChangesMixin
from .channels import ChannelMixin
from .client import IRCConnection
from .config import ServerConfig
from .handlers import EchoLostError, IncomingMixin
from .lines import build_line
from .names import InvalidNameError, is_channel, validate_channel
from .netsplit import NetsplitDebouncer
from .outgoing import OutgoingMixin

if TYPE_CHECKING:
    from .connector import IRCConnector

log = logging.getLogger("bridgekit.irc")


@dataclass
class Member:
    nick: str
    modes: set[str] = field(default_factory=set)


@dataclass
class Channel:
    name: str
    members: dict[str, Member] = field(default_factory=dict)
    topic: str | None = None
    names_buf: dict[str, Member] | None = None
    synced: bool = False
    #: Of the channel's own modes, those that close it: ``i`` (invite-only), ``k`` (key).
    closing_modes: set[str] = field(default_factory=set)
    #: Whether this connection last reported the channel closed (None: not yet).
    reported_closed: bool | None = None
    #: ``+m``: only members with a prefix mode (voice and up) may speak.
    moderated: bool = False


def split_key(key: PortalKey) -> tuple[str, str]:
    server, _, rest = key.id.partition("/")
    return server, rest


class IRCClient(
    IncomingMixin,
    ChannelMixin,
    OutgoingMixin,
    ChannelChangesMixin,
    NetworkClient,
    EditHandler,
    ReactionHandler,
    MembershipHandler,
    RoomMetaHandler,
    BackfillHandler,
    TypingHandler,
    RelayLineHandler,
    RoomCapabilityHandler,
):
    connector: IRCConnector

    def __init__(self, connector: IRCConnector, login: LoginInfo) -> None:
        super().__init__(connector, login)
        self.server_name = str(login.metadata.get("server") or login.remote_id.partition("/")[0])
        self.server: ServerConfig = connector.servers[self.server_name]
        self.bridge = connector.bridge
        self.channels: dict[str, Channel] = {}
        #: Channels to be in (folded -> name as typed), persisted and rejoined on reconnect.
        self.wanted: dict[str, str] = {}
        #: Keys (+k) of channels to be in (folded -> key): given by this user with `irc join`,
        #: or seen set by an operator while in the channel. Never used for anyone else.
        self.keys: dict[str, str] = {}
        self.display: dict[str, str] = {}  # folded nick -> nick as last seen
        self.conn: IRCConnection | None = None
        self.last_activity = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._follower: tuple[int, bool] = (-1, False)  # (listener generation, answer)
        self._idle_timer: asyncio.TimerHandle | None = None
        self._echo: dict[str, list[tuple[str, asyncio.Future[str | None]]]] = {}
        self._sent_text: OrderedDict[str, str] = OrderedDict()
        #: folded target -> the task repeating ``+typing=active`` while the Matrix user types
        self._typing: dict[str, asyncio.Task[None]] = {}
        self._typing_sent: dict[str, float] = {}  # folded target -> loop time of last active
        #: folded channel -> (why the server refused our JOIN, when): see ``_on_join_refused``.
        self.join_refused: dict[str, tuple[str, float]] = {}
        #: Channels an ``irc join`` command is waiting for: it answers a refusal itself.
        self.quiet_join_errors: set[str] = set()
        #: folded channels ``irc join`` asked for: the user is invited to the room on JOIN.
        self.invite_on_join: set[str] = set()
        self._waiters: list[tuple[Any, asyncio.Future[Any]]] = []
        #: Why the password last was not sent to NickServ (said once, not at every reconnect).
        self._nickserv_told: str | None = None
        self.netsplit = NetsplitDebouncer(self.server.netsplit_debounce, self._netsplit_leaves)
        self._loaded = False
        self._history_refs: set[str] = set()
        self._password: str | None = None
        self.conn = self._make_conn()

    # -- ids ---------------------------------------------------------------------------------

    def fold(self, name: str) -> str:
        return self.conn.fold(name) if self.conn else self.connector.fold(name)

    def rid(self, nick: str) -> str:
        return f"{self.server_name}/{self.fold(nick)}"

    def chan_key(self, channel: str) -> PortalKey:
        return PortalKey(f"{self.server_name}/{self.fold(channel)}")

    def dm_key(self, nick: str) -> PortalKey:
        return PortalKey(f"{self.server_name}/{self.fold(nick)}", receiver=self.login.id)

    @property
    def nick(self) -> str:
        return self.conn.nick if self.conn else self.login.remote_name

    @property
    def chantypes(self) -> str:
        return self.conn.isupport.chantypes if self.conn else "#&"

    # -- lifecycle ---------------------------------------------------------------------------

    async def load_state(self) -> None:
        """Channels to be in and their keys, from storage (once; later calls return at once)."""
        if self._loaded:
            return
        self._loaded = True
        for name in (await self.connector.state.get(self.login.id)).channels:
            try:
                validate_channel(name)
            except InvalidNameError:
                continue
            self.wanted[self.connector.fold(name)] = name
        for name in self.login.metadata.get("channels") or []:
            self.wanted.setdefault(self.connector.fold(name), name)
        self.keys = await self.connector.load_channel_keys(self.login.id)

    async def save_channels(self) -> None:
        await self.connector.state.update(self.login.id, channels=sorted(self.wanted.values()))

    async def set_channel_key(self, folded: str, key: str | None) -> None:
        if self.keys.get(folded) == key:
            return
        if key:
            self.keys[folded] = key
        else:
            self.keys.pop(folded, None)
        await self.connector.store_channel_keys(self.login.id, self.keys)

    def _make_conn(self) -> IRCConnection:
        conn = IRCConnection(
            self.server,
            self.login.remote_name or "matrixuser",
            on_line=self.on_line,
            on_registered=self._on_registered,
            on_state=self._on_state,
            semaphore=self.connector.semaphore(self.server_name),
            start_pacer=self.connector.start_pacer(self.server_name),
            password=self.server.password,
            label=f"{self.login.id}/{self.login.remote_name}",
        )
        conn.on_ready_lines = self._rejoin_lines
        conn.awaiting = lambda: bool(self._echo) or bool(conn.queue)
        conn.follower = self._follows_only
        return conn

    async def connect(self) -> None:
        await self.load_state()
        assert self.conn is not None
        nick = (await self.connector.state.get(self.login.id)).nick
        if nick:
            self.conn.wanted_nick = nick
        self.use_password(await self.connector.load_password(self.login.id))
        self.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTING)
        self.conn.start()
        self._schedule_idle_check()

    def _follows_only(self) -> bool:
        """In channels, and the listener of none of them: another connection bridges all
        this one hears (its own private messages aside)."""
        generation = self.connector.listener_generation
        cached = self._follower
        if cached[0] != generation:
            folded = self.channels
            only = bool(folded) and not any(self.connector.is_listener(self, f) for f in folded)
            cached = self._follower = (generation, only)
        return cached[1]

    def use_password(self, password: str | None) -> None:
        """Log in with ``password`` (SASL where offered, else NickServ) from the next
        (re)connection on; without one, a connection that relays others (every connection of
        a ``relay_only`` server) logs in with the server's ``sasl_username``."""
        self._password = password
        if self.conn is None:
            return
        if password:
            self.conn.sasl = (self.conn.wanted_nick, password)
        elif self.server.sasl_username and self.server.sasl_password and self.server.relay_only:
            self.conn.sasl = (self.server.sasl_username, self.server.sasl_password)
        else:
            self.conn.sasl = None

    async def disconnect(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self.netsplit.cancel()
        for task in self._typing.values():
            task.cancel()
        self._typing.clear()
        self._forget_presence()
        if self.conn is not None:
            await self.conn.stop()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def join_line(self, name: str) -> bytes:
        """``JOIN name``, with the channel's key when the bridge knows one."""
        key = self.keys.get(self.fold(name))
        return build_line("JOIN", name, key) if key else build_line("JOIN", name)

    def _rejoin_lines(self) -> list[bytes]:
        lines = []
        for name in self.wanted.values():
            try:
                lines.append(self.join_line(name))
            except ValueError:
                continue
        return lines

    def _on_registered(self) -> None:
        assert self.conn is not None
        self.connector.set_puppet_nick(self, None, self.conn.nick)
        self.conn.label = f"{self.login.id}/{self.conn.nick}"
        if self._password and "sasl" not in self.conn.caps:
            self._spawn(self._identify(self._password))
        if self.conn.sasl is not None and self.conn.sasl_failed:
            # Connected, but not logged in: say so where the user looks, not only in a log.
            account = self.conn.sasl[0]
            how = "`irc storepass`" if self._password else "the bridge's sasl_password"
            self._spawn(
                self.bridge.notify_user(
                    self.login.user_mxid,
                    f"{self.server_name} refused the SASL login as {account}: connected "
                    f"without logging in. Check the password ({how}).",
                )
            )

    async def _identify(self, password: str) -> None:
        """NickServ for a server without SASL, if it vouches for its services."""
        why_not = await nickserv.identify(self, password)
        told, self._nickserv_told = self._nickserv_told, why_not
        if why_not is not None and why_not != "disconnected" and why_not != told:
            await self.bridge.notify_user(
                self.login.user_mxid,
                f"Your password was not sent to {self.server.nickserv}: {why_not}. "
                "Connected without identifying.",
            )

    def _on_state(self, state: str, message: str) -> None:
        if state == "connected":
            self.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)
        elif state == "connecting":
            pass
        elif state == "idle":
            self._forget_presence()
            self.bridge.report_state(
                self.login.id, BridgeStateEvent.STARTING, "idle: disconnected until you next speak"
            )
        else:
            self._forget_presence()
            self.bridge.report_state(self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, message)

    def _forget_presence(self) -> None:
        for folded in list(self.channels):
            self.connector.remove_listener(self, folded)
        self.channels.clear()
        if self.conn is not None:
            self.connector.set_puppet_nick(self, self.conn.nick, None)
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(ConnectionError("disconnected from IRC"))
        self._waiters.clear()
        for pending in self._echo.values():
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(EchoLostError("disconnected before the server echoed it"))
                    fut.exception()  # retrieved: the sender sees it through asyncio.wait

    @property
    def follows_channel_access(self) -> bool:
        """Whether being kept out of a channel puts the user out of its room (a relay
        connection speaks for a whole room: it is never put out)."""
        return self.server.follow_channel_access and not self.server.relay_only

    async def kept_out(self, name: str, why: str, tell: bool = True) -> None:
        """The channel ``name`` keeps this connection out (``why``, from IRC): its user is
        removed from the channel's room and, with ``tell``, told in the management room."""
        text = f"{self.nick} {why}"
        removed = await self.bridge.remove_from_portal(
            self.login.id, self.chan_key(name), f"{text} (on {self.server_name})"
        )
        told = False
        if tell:
            said = f"On {self.server_name}, {text}."
            if removed:
                said += " You were removed from its room."
            if "`irc join" not in why:
                said += f" `irc join {name}` tries again."
            told = await self.bridge.notify_user(self.login.user_mxid, said)
        if not (removed or told):
            log.info("%s", text)

    async def report_join_refused(self, name: str, reason: str, management: bool = True) -> None:
        """Say why we are not in ``name`` where the user looks: the portal room (if it exists,
        from the bridge bot) and, with ``management``, the management room."""
        text = f"{self.nick} could not join {name} on {self.server_name}: {reason}."
        in_portal = await self.bridge.notify_portal(
            self.chan_key(name),
            f"{self.login.user_mxid}: {text} Your messages here are not delivered "
            "until the join works.",
        )
        told = management and await self.bridge.notify_user(self.login.user_mxid, text)
        if not (in_portal or told):
            log.warning("%s", text)

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def _schedule_idle_check(self) -> None:
        timeout = self.server.idle_timeout
        if not timeout:
            return
        loop = asyncio.get_running_loop()

        def check() -> None:
            idle_for = time.monotonic() - self.last_activity
            if idle_for >= timeout and self.conn is not None and not self.conn.idle:
                joining = set(self.wanted) - set(self.join_refused)  # its JOIN may be unread
                ears = [f for f in set(self.channels) | joining if self.connector.sole_ear(self, f)]
                if ears:
                    log.debug("%s idle, kept: the only connection in %s", self.login.id, ears)
                else:
                    log.info("%s idle for %.0fs: disconnecting", self.login.id, idle_for)
                    self.conn.go_idle("Idle timeout")
                    self._forget_presence()
            self._idle_timer = loop.call_later(max(0.5, min(timeout / 4, 60.0)), check)

        self._idle_timer = loop.call_later(max(0.5, min(timeout / 4, 60.0)), check)

    # -- events to the runtime ---------------------------------------------------------------

    def emit(self, event: RemoteEvent) -> None:
        """Hand an event to the runtime now: it keeps the order of the calls and commits
        every event read in one go together."""
        event.network = "irc"
        self.bridge.queue_remote_event_soon(self.login.id, event)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("IRC event task failed: %s", task.exception())

    # -- runtime queries ---------------------------------------------------------------------

    def is_in_portal(self, portal: PortalKey) -> bool:
        server, _ = split_key(portal)
        if server != self.server_name:
            return False
        return not portal.receiver or portal.receiver == self.login.id

    def room_capabilities(self, portal: PortalKey) -> RoomCapabilities:
        """A moderated channel (+m) where this connection has no voice is read-only: the
        server would drop (404) whatever is sent, so the runtime refuses it first."""
        server, rest = split_key(portal)
        chan = self.channels.get(rest) if server == self.server_name else None
        if chan is None or not chan.moderated or self.conn is None:
            return RoomCapabilities()
        own = chan.members.get(self.fold(self.nick))
        if own is not None and own.modes:
            return RoomCapabilities()
        return RoomCapabilities(
            read_only=True,
            read_only_reason=f"{chan.name} is moderated (+m) and {self.nick} has no voice",
        )

    def channel_name(self, key: PortalKey) -> str | None:
        server, rest = split_key(key)
        if key.receiver or server != self.server_name or not is_channel(rest, self.chantypes):
            return None
        chan = self.channels.get(rest)
        return chan.name if chan else self.wanted.get(rest, rest)

    def space_info(self) -> SpaceInfo:
        """The server's channels share one Matrix space, named as the server is configured."""
        return SpaceInfo(self.server_name, name=self.server_name)

    def power_of(self, member: Member) -> int:
        levels = self.server.mode_power_levels
        return max((levels.get(m, 0) for m in member.modes), default=0)

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        server, rest = split_key(portal)
        if portal.receiver:
            nick = self.display.get(rest, rest)
            return ChatInfo(
                name=nick,
                is_dm=True,
                dm_user=f"{server}/{rest}",
                members=[ChatMember(f"{server}/{rest}", name=nick)],
            )
        chan = self.channels.get(rest)
        name = chan.name if chan else self.wanted.get(rest, rest)
        closed = rest in self.keys or bool(chan and chan.closing_modes)
        info = ChatInfo(
            name=name,
            alias=self.connector.alias_localpart_for(server, name),
            joinable=False if closed else None,
            parent=self.space_info(),
        )
        if chan is not None:
            info.topic, info.members = chan.topic, self.members_of(chan)
            info.members_complete = chan.synced  # NAMES seen: the whole channel
        return info

    def members_of(self, chan: Channel) -> list[ChatMember]:
        out = []
        for folded, member in chan.members.items():
            if self.connector.puppet_for(self.server_name, folded) is not None:
                continue  # a Matrix user's own connection: not a ghost
            out.append(
                ChatMember(f"{self.server_name}/{folded}", self.power_of(member), name=member.nick)
            )
        return out

    async def get_user_info(self, remote_user_id: str) -> UserInfo | None:
        server, _, folded = remote_user_id.partition("/")
        if server != self.server_name:
            return None
        return UserInfo(name=self.display.get(folded, folded))
