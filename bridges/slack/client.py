"""One Slack login: a workspace's app or a person's own token.

An app login (:attr:`SlackLoginMeta.kind` "app") opens Socket Mode and receives the events of
its workspace for everyone; it also relays Matrix users who have no login of their own (Slack
shows the relayed name and avatar itself: ``RendersRelaySender``). A personal login only sends:
its user's messages come in through the app, from the Matrix user's own account.

Typing is not bridged, either way: Slack's Events API sends no typing events, and the Web API
has no call that shows a bot or a user typing (only the retired RTM websocket had both), so
there is nothing to receive and nothing honest to send. The client is no ``TypingHandler``.
Room names, topics and read markers go to Slack from personal logins (:mod:`.room_meta`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bridgekit.contract.connector import (
    BridgeStateEvent,
    LoginInfo,
    NetworkClient,
    RendersRelaySender,
)
from bridgekit.contract.events import ChatInfo, MatrixMessage, PortalKey, RemoteUserID, UserInfo
from bridgekit.contract.live_gate import LiveGate
from bridgekit.contract.results import MessageResult

from . import config as cfg
from .api import error_code, is_dead_token, web_client
from .credentials import BOT_TOKEN, USER_TOKEN, TokenWatch, dead_notice
from .edits import SlackEdits
from .history import SlackBackfill
from .ids import parse_chat_rid
from .ratelimit import MethodLimits
from .reactions import SlackReactions
from .room_meta import SlackRoomMeta
from .socket import SocketReceiver
from .state import SlackLoginMeta, SlackLoginState

if TYPE_CHECKING:
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack")


class SlackClient(
    NetworkClient, RendersRelaySender, SlackBackfill, SlackEdits, SlackReactions, SlackRoomMeta
):
    connector: SlackConnector

    def __init__(self, connector: SlackConnector, login: LoginInfo) -> None:
        super().__init__(connector, login)
        self.meta: SlackLoginMeta = connector.meta_from_dict(login.metadata)
        self.limits = MethodLimits(int(cfg.setting(connector.config, "rate_limit_retries")))
        which = BOT_TOKEN if self.is_app else USER_TOKEN
        self.web: AsyncWebClient = web_client(
            connector.config,
            self.meta.token,
            watch=TokenWatch(which, self.token_refused),
            limits=self.limits,
            session=connector.web_sessions.get(),
        )
        self.socket: SocketReceiver | None = None
        self.connected = False
        #: Set once Slack said a token is dead: nothing retries until the user logs in again.
        self.dead = False
        self._retry: asyncio.Task[None] | None = None
        #: Closed from each connect until the runtime queued this login's catch-ups.
        self.live_gate = LiveGate()
        self._failures = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def team_id(self) -> str:
        return self.meta.team_id

    @property
    def is_app(self) -> bool:
        return self.meta.kind == "app"

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        if self.dead or await self._refused_before():
            return
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTING)
        try:
            resp = await self.web.auth_test()
        except Exception as e:  # noqa: BLE001 - reported, then retried or stopped
            await self.failed(e)
            return
        data: dict[str, Any] = resp.data if isinstance(resp.data, dict) else {}
        if data.get("team_id") and data.get("team_id") != self.team_id:
            await self.failed(ValueError("the token now belongs to another workspace"))
            return
        if self.is_app and self.meta.app_token:
            self.live_gate.close()  # opened by catch_up_queued (history.py)
            self.socket = SocketReceiver(self)
            try:
                await self.socket.start()
            except Exception as e:  # noqa: BLE001
                await self.failed(e)
                return
        if self.dead:  # the app-level token was refused while connecting
            return
        self.connected = True
        self._failures = 0
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)

    async def disconnect(self) -> None:
        self.connected = False
        self.live_gate.open()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.socket is not None:
            await self.socket.stop()
            self.socket = None

    async def failed(self, exc: BaseException) -> None:
        """A call failed: a dead token stops the login, anything else is retried later
        (backing off: 5 s, 10 s, ... up to 5 minutes)."""
        if is_dead_token(exc):
            self.token_refused(BOT_TOKEN if self.is_app else USER_TOKEN, error_code(exc))
        if self.dead:
            await asyncio.gather(*self._tasks, return_exceptions=True)  # stored and reported
            return
        log.warning("Slack login %s: %s", self.login.id, exc)
        self.connector.bridge.report_state(
            self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, str(exc)
        )
        if self._retry is None or self._retry.done():
            delay = min(5.0 * 2**self._failures, 300.0)
            self._failures += 1
            self._retry = asyncio.create_task(self._reconnect_later(delay))

    async def _reconnect_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._retry = None
        if not self.dead:
            await self.disconnect()
            await self.connect()

    def socket_lost(self) -> None:
        """slack-sdk lost the Socket Mode connection and is reconnecting."""
        if self.connected and not self.dead:
            self.connected = False
            self.connector.bridge.report_state(
                self.login.id,
                BridgeStateEvent.TRANSIENT_DISCONNECT,
                "Socket Mode connection lost: reconnecting",
            )

    def socket_up(self) -> None:
        """A Socket Mode connection said hello: after a loss, the login is back."""
        socket = self.socket
        if not self.connected and not self.dead and socket is not None and socket.started:
            self.connected = True
            # Back after a gap: live events wait behind the catch-up that CONNECTED starts
            # (history.py). Called before any envelope after this hello is handled.
            self.live_gate.close()
            self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)

    def token_refused(self, which: str, error: str) -> None:
        """Slack said ``which`` token is dead (``error``): the login stops for good, now
        (synchronous: called from inside slack-sdk's reconnect loop, which must not go round
        again), and the user is told once what to do, also across restarts: the refusal is
        stored first (:class:`SlackLoginState`)."""
        if self.dead:
            return
        self.dead = True
        self.connected = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.socket is not None:
            self.socket.halt()
        log.warning("Slack login %s: the %s was refused (%s)", self.login.id, which, error)
        task = asyncio.get_running_loop().create_task(self._stop_dead(which, error))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_dead(self, which: str, error: str) -> None:
        state = SlackLoginState(self.meta.session, which, error)
        try:
            await self.connector.bridge.set_login_metadata(self.login.id, state)
        except LookupError:  # logged out meanwhile: nobody to tell
            await self._close_socket()
            return
        except Exception:  # noqa: BLE001 - told anyway (and again after a restart)
            log.warning("Slack login %s: could not store the refusal", self.login.id)
        self.connector.bridge.report_state(
            self.login.id,
            BridgeStateEvent.BAD_CREDENTIALS,
            dead_notice(which, error, self.meta.kind),
            error=error,
        )
        await self._close_socket()

    async def _refused_before(self) -> bool:
        """Slack refused this login's token before a restart: it stays dead without asking
        Slack again, and its user, told then, is not told again."""
        state = await self.connector.bridge.login_metadata(self.login.id)
        if not isinstance(state, SlackLoginState) or not state.refused(self.meta):
            return False
        self.dead = True
        self.connector.bridge.report_state(
            self.login.id,
            BridgeStateEvent.BAD_CREDENTIALS,
            dead_notice(state.refused_token, state.refused_error, self.meta.kind),
            error=state.refused_error,
            notify=False,
        )
        return True

    async def _close_socket(self) -> None:
        if self.socket is not None:
            socket, self.socket = self.socket, None
            await socket.stop()

    async def mark_dead(self, error: str) -> None:
        """Stop the login as if Slack had refused its token with ``error``."""
        self.token_refused(BOT_TOKEN if self.is_app else USER_TOKEN, error)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- routing --------------------------------------------------------------------------------

    def is_in_portal(self, portal: PortalKey) -> bool:
        if self.dead:
            return False
        if portal.receiver:
            return portal.receiver == self.login.id
        parsed = parse_chat_rid(portal.id)
        return parsed is not None and parsed[0] == self.team_id

    # -- Matrix -> Slack -------------------------------------------------------------------------

    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        return await self.connector.outbound.send_message(self, msg)

    # -- info ------------------------------------------------------------------------------------

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        return await self.connector.chats.chat_info(self, portal)

    async def get_user_info(self, remote_user_id: RemoteUserID) -> UserInfo | None:
        return await self.connector.users.user_info(self, remote_user_id)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """A Web API call with this login's token (through the SDK's method for it, which
        encodes the arguments as that method wants). It waits out a 429 another call of the
        method got (:class:`~.ratelimit.MethodLimits`); a dead token stops the login
        (:class:`~.credentials.TokenWatch`)."""
        await self.limits.wait(method)
        resp = await getattr(self.web, method.replace(".", "_"))(**params)
        return resp.data if isinstance(resp.data, dict) else {}
