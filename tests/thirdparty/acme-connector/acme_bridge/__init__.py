"""Acme, an echo network: the smallest useful connector, written as a third party would.

Logging in with a token gives a user one chat, ``lobby``, where the ``echo`` user greets them
and answers each message with a reply that quotes it. Everything else (rooms, ghosts, ids,
ordering, persistence) is the runtime's.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

from bridgekit.contract.connector import (
    BridgeStateEvent,
    LoginField,
    LoginFlow,
    LoginInfo,
    LoginProcess,
    LoginStep,
    MessageResult,
    NetworkClient,
    NetworkConnector,
)
from bridgekit.contract.events import (
    ChatInfo,
    ChatMember,
    EventSender,
    MatrixMessage,
    MessageContent,
    PortalKey,
    RemoteMessage,
    RemoteMessageID,
    RemoteUserID,
    UserInfo,
)

ECHO = RemoteUserID("echo")
_ids = itertools.count(1)


class AcmeConnector(NetworkConnector):
    name: ClassVar[str] = "acme"
    display_name: ClassVar[str] = "Acme"
    ghost_template: ClassVar[str] = "_acme_{id}"

    @classmethod
    def validate_config(cls, config: Any) -> list[tuple[str, str]]:
        greeting = config.get("greeting", "welcome to acme")
        return [] if isinstance(greeting, str) else [("greeting", "must be a string")]

    def login_flows(self) -> list[LoginFlow]:
        return [LoginFlow("token", "API token")]

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        return TokenLogin(user_mxid)

    async def load_login(self, login: LoginInfo) -> NetworkClient:
        return AcmeClient(self, login)


class TokenLogin(LoginProcess):
    def __init__(self, user_mxid: str) -> None:
        self.user_mxid = user_mxid

    async def start(self) -> LoginStep:
        return LoginStep("Send your Acme API token.", [LoginField("token", "token", secret=True)])

    async def submit(self, values: dict[str, str]) -> LoginStep:
        if not values.get("token", "").startswith("acme-"):
            raise ValueError("an Acme token starts with acme-")
        me = self.user_mxid.split(":")[0].lstrip("@")
        return LoginStep(complete=LoginInfo("", self.user_mxid, "acme", me, me))


class AcmeClient(NetworkClient):
    def lobby(self) -> PortalKey:
        return PortalKey("lobby", receiver=self.login.id)

    async def connect(self) -> None:
        bridge = self.connector.bridge
        bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)
        greeting = str(self.connector.config.get("greeting", "welcome to acme"))
        await self.say(MessageContent(greeting))

    async def disconnect(self) -> None:
        pass

    async def say(self, content: MessageContent) -> None:
        message_id = RemoteMessageID(f"acme-{next(_ids)}")
        await self.connector.bridge.queue_remote_event(
            self.login.id,
            RemoteMessage(self.lobby(), EventSender(ECHO), id=message_id, content=content),
        )

    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        mine = RemoteMessageID(f"acme-{next(_ids)}")
        await self.say(MessageContent(f"echo: {msg.content.body}", reply_to=mine))
        return MessageResult(mine)

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        return ChatInfo(name="Acme lobby", members=[ChatMember(ECHO)], is_dm=False)

    async def get_user_info(self, remote_user_id: RemoteUserID) -> UserInfo | None:
        return UserInfo(name="Echo", is_bot=True) if remote_user_id == ECHO else None
