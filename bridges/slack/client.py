"""One Slack login: a workspace's app or a person's own token.

An app login (:attr:`SlackLoginMeta.kind` "app") opens Socket Mode and receives the events of
its workspace for everyone; it also relays Matrix users who have no login of their own (Slack
shows the relayed name and avatar itself: ``RendersRelaySender``). A personal login only sends:
its user's messages come in through the app, from the Matrix user's own account.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bridgekit.contract.connector import (
    BridgeStateEvent,
    LoginInfo,
    NetworkClient,
    RendersRelaySender,
)
from bridgekit.contract.events import ChatInfo, MatrixMessage, PortalKey, RemoteUserID, UserInfo
from bridgekit.contract.results import MessageResult

from .api import error_code, is_dead_token, web_client
from .ids import parse_chat_rid
from .socket import SocketReceiver
from .state import SlackLoginMeta

if TYPE_CHECKING:
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack")


class SlackClient(NetworkClient, RendersRelaySender):
    connector: SlackConnector

    def __init__(self, connector: SlackConnector, login: LoginInfo) -> None:
        super().__init__(connector, login)
        self.meta: SlackLoginMeta = connector.meta_from_dict(login.metadata)
        self.web: AsyncWebClient = web_client(
            connector.config, self.meta.token, connector.web_sessions.get()
        )
        self.socket: SocketReceiver | None = None
        self.connected = False
        #: Set once Slack said the token is dead: nothing retries until the user logs in again.
        self.dead = False
        self._retry: asyncio.Task[None] | None = None

    @property
    def team_id(self) -> str:
        return self.meta.team_id

    @property
    def is_app(self) -> bool:
        return self.meta.kind == "app"

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
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
            self.socket = SocketReceiver(self)
            try:
                await self.socket.start()
            except Exception as e:  # noqa: BLE001
                await self.failed(e)
                return
        self.connected = True
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)

    async def disconnect(self) -> None:
        self.connected = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.socket is not None:
            await self.socket.stop()
            self.socket = None

    async def failed(self, exc: BaseException) -> None:
        """A call failed: a dead token stops the login, anything else is retried later."""
        if is_dead_token(exc):
            await self.mark_dead(error_code(exc))
            return
        log.warning("Slack login %s: %s", self.login.id, exc)
        self.connector.bridge.report_state(
            self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, str(exc)
        )
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._reconnect_later())

    async def _reconnect_later(self, delay: float = 5.0) -> None:
        await asyncio.sleep(delay)
        self._retry = None
        if not self.dead:
            await self.disconnect()
            await self.connect()

    async def mark_dead(self, error: str) -> None:
        if self.dead:
            return
        self.dead = True
        self.connected = False
        if self.socket is not None:
            await self.socket.stop()
            self.socket = None
        self.connector.bridge.report_state(
            self.login.id,
            BridgeStateEvent.BAD_CREDENTIALS,
            f"Slack refused the token ({error}): log in again with `login slack`",
            error=error,
        )

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
        encodes the arguments as that method wants); a dead token stops the login."""
        try:
            resp = await getattr(self.web, method.replace(".", "_"))(**params)
        except SlackApiError as e:
            if is_dead_token(e):
                await self.mark_dead(error_code(e))
            raise
        return resp.data if isinstance(resp.data, dict) else {}
