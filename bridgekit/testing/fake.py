"""An in-memory network connector implementing the whole contract (see
``contract/connector.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..contract.commands import Command, CommandEvent
from ..contract.connector import (
    FORWARD,
    AliasResolver,
    BackfillHandler,
    BridgeAPI,
    BridgeStateEvent,
    ChatIdParser,
    EditHandler,
    FetchResult,
    LoginField,
    LoginFlow,
    LoginInfo,
    LoginProcess,
    LoginStep,
    MembershipHandler,
    MessageResult,
    NetworkClient,
    NetworkConnector,
    ReactionHandler,
    ReadReceiptHandler,
    RedactionHandler,
    RendersRelaySender,
    RoomCapabilities,
    RoomCapabilityHandler,
    RoomMetaHandler,
    ThirdPartyHandler,
    TypingHandler,
)
from ..contract.events import (
    ChatInfo,
    ChatMember,
    EventSender,
    MatrixEdit,
    MatrixMembership,
    MatrixMessage,
    MatrixReaction,
    MatrixReactionRemove,
    MatrixReadReceipt,
    MatrixRedaction,
    MatrixRoomMeta,
    MatrixTyping,
    MessageContent,
    MessagePart,
    PortalKey,
    RemoteChatResync,
    RemoteEvent,
    RemoteMessage,
    RemoteUserInfoChange,
    UserInfo,
)
from ..contract.ids import unescape_localpart
from .fake_network import FakeChat, FakeNetwork, SentItem


class FakeLogin(LoginProcess):
    def __init__(self, connector: FakeConnector, user_mxid: str) -> None:
        self.connector = connector
        self.user_mxid = user_mxid

    async def start(self) -> LoginStep:
        return LoginStep(
            instructions="Log in to the fake network.",
            fields=[
                LoginField("username", "username"),
                LoginField("password", "password", secret=True),
            ],
        )

    async def submit(self, values: dict[str, str]) -> LoginStep:
        username, password = values.get("username", ""), values.get("password", "")
        expected = self.connector.network.passwords.get(username)
        if expected is not None and expected != password:
            raise ValueError("wrong password")
        return LoginStep(
            complete=LoginInfo(
                id="",
                user_mxid=self.user_mxid,
                network="fake",
                remote_id=username,
                remote_name=username,
            )
        )


@dataclass
class FakeMeta:
    """The fake network's typed metadata, the same for portals, ghosts and logins (tests)."""

    note: str = ""
    seen: list[str] = field(default_factory=list)


class FakeConnector(NetworkConnector, AliasResolver, ChatIdParser, ThirdPartyHandler):
    name: ClassVar[str] = "fake"
    display_name: ClassVar[str] = "Fake network"
    ghost_template: ClassVar[str] = "_fake_{id}"
    alias_template: ClassVar[str | None] = "_fake_{id}"
    portal_metadata_type: ClassVar[type | None] = FakeMeta
    ghost_metadata_type: ClassVar[type | None] = FakeMeta
    login_metadata_type: ClassVar[type | None] = FakeMeta

    def __init__(self, bridge: BridgeAPI, config: Mapping[str, Any]) -> None:
        super().__init__(bridge, config)
        self.network = FakeNetwork()
        self.clients: dict[str, FakeClient] = {}
        if config.get("sent_log"):
            path = config["sent_log"]
            try:
                with open(path, encoding="utf-8") as fh:
                    for line in fh:
                        item = json.loads(line)
                        if item.get("event_id"):
                            self.network.sent_event_ids[item["event_id"]] = item["id"]
            except FileNotFoundError:
                pass
            self.network.sent_log = open(path, "a", encoding="utf-8")  # noqa: SIM115
        for chat_id, members in (config.get("chats") or {}).items():
            self.network.add_chat(chat_id, members=list(members))
        self._inbox: asyncio.Server | None = None

    async def start(self) -> None:
        port = self.config.get("inbox_port")
        if port:
            self._inbox = await asyncio.start_server(self._serve_inbox, "127.0.0.1", int(port))

    async def stop(self) -> None:
        if self._inbox is not None:
            self._inbox.close()
            await self._inbox.wait_closed()

    async def _serve_inbox(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The remote side, from another process (config ``inbox_port``, loopback): each line
        ``{"chat", "sender", "body", "id"?, "parts"?}`` arrives like a network message and is
        answered ``ok <id>`` once the bridge holds it durably: the ack a network that
        redelivers unacknowledged messages waits for. ``parts``: a message in parts, a list
        of ``{"id", "body", "msgtype"?, "media_url"?}``."""
        try:
            while line := await reader.readline():
                item = json.loads(line)
                key = PortalKey(item["chat"])
                client = next((c for c in self.clients.values() if c.is_in_portal(key)), None)
                if client is None:
                    writer.write(b"no login in that chat\n")
                elif item.get("parts"):
                    parts = [
                        MessagePart(
                            p["id"],
                            MessageContent(
                                p["body"], msgtype=p.get("msgtype", "m.text"),
                                media_url=p.get("media_url"),
                            ),
                        )
                        for p in item["parts"]
                    ]  # fmt: skip
                    msg_id = await client.remote_parts(
                        key.id, item["sender"], parts, msg_id=item.get("id")
                    )
                    writer.write(f"ok {msg_id}\n".encode())
                else:
                    msg_id = await client.remote_message(
                        key.id, item["sender"], item["body"], msg_id=item.get("id")
                    )
                    writer.write(f"ok {msg_id}\n".encode())
                await writer.drain()
        finally:
            writer.close()

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        delay = config.get("send_delay", 0)
        if not isinstance(delay, int | float) or delay < 0:
            problems.append(("send_delay", "must be a number of seconds >= 0"))
        return problems

    def login_flows(self) -> list[LoginFlow]:
        return [LoginFlow("password", "Password", "Username and password")]

    def commands(self) -> list[Command]:
        """A connector command, as a real connector would add (``irc nick``...)."""

        async def fake_chats(ce: CommandEvent) -> None:
            names = sorted(self.network.chats)
            await ce.reply("Chats: " + (", ".join(names) if names else "none"))

        return [
            Command(
                "fake-chats", fake_chats, "List the fake network's chats.", section="Fake network"
            )
        ]

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        return FakeLogin(self, user_mxid)

    async def load_login(self, login: LoginInfo) -> NetworkClient:
        # Config ``renders_relay_sender``: a network that shows each message's sender name
        # and avatar itself (as Discord webhooks do), so relayed messages come unlabelled.
        cls = FakeRenderingClient if self.config.get("renders_relay_sender") else FakeClient
        client = cls(self, login)
        self.clients[login.id] = client
        return client

    async def resolve_alias(self, alias_localpart: str) -> tuple[PortalKey, str | None] | None:
        if not alias_localpart.startswith("_fake_"):
            return None
        chat_id = unescape_localpart(alias_localpart[len("_fake_") :])
        if chat_id is None or chat_id not in self.network.chats:
            return None
        login = next(iter(self.clients), None)
        return PortalKey(chat_id), login

    def parse_chat_id(self, text: str) -> PortalKey:
        chat_id = text.strip()
        if chat_id not in self.network.chats:
            raise ValueError("no such chat")
        return PortalKey(chat_id)

    def protocol_info(self) -> dict[str, Any]:
        return {
            "user_fields": ["username"],
            "location_fields": ["chat"],
            "icon": "",
            "field_types": {
                "username": {"regexp": ".+", "placeholder": "alice"},
                "chat": {"regexp": ".+", "placeholder": "general"},
            },
            "instances": [{"network_id": "fake", "desc": "Fake network", "fields": {}}],
        }

    async def lookup_location(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        chat = fields.get("chat")
        if chat not in self.network.chats:
            return []
        from ..contract.ids import escape_localpart

        alias = f"#_fake_{escape_localpart(chat)}:{self.bridge.domain}"
        return [{"alias": alias, "protocol": "fake", "fields": {"chat": chat}}]


class FakeClient(
    NetworkClient,
    EditHandler,
    RedactionHandler,
    ReactionHandler,
    TypingHandler,
    ReadReceiptHandler,
    MembershipHandler,
    RoomMetaHandler,
    BackfillHandler,
    RoomCapabilityHandler,
):
    connector: FakeConnector

    @property
    def network(self) -> FakeNetwork:
        return self.connector.network

    async def connect(self) -> None:
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)

    async def disconnect(self) -> None:
        pass

    def is_in_portal(self, portal: PortalKey) -> bool:
        if portal.receiver:
            return portal.receiver == self.login.id
        chat = self.network.chats.get(portal.id)
        return chat is not None and (not chat.members or self.login.remote_id in chat.members)

    def room_capabilities(self, portal: PortalKey) -> RoomCapabilities:
        return self.network.capabilities.get(portal.id) or RoomCapabilities()

    async def _record(self, kind: str, chat_id: str, data: Any, with_id: bool = True) -> str | None:
        delay = self.connector.config.get("send_delay", 0)
        if delay:
            await asyncio.sleep(delay)
        if self.network.fail_next_send is not None:
            exc, self.network.fail_next_send = self.network.fail_next_send, None
            raise exc
        remote_id = self.network.next_id() if with_id else None
        await self.network.record(SentItem(kind, self.login.id, chat_id, data, remote_id))
        return remote_id

    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        if self.connector.config.get("record", True) is False:
            return MessageResult(self.network.next_id())  # a no-op network, for benchmarks
        if msg.maybe_sent and msg.event_id in self.network.sent_event_ids:
            # Like a network with client-supplied nonces: a resend is recognised.
            return MessageResult(self.network.sent_event_ids[msg.event_id])
        remote_id = await self._record("message", msg.portal.id, msg)
        extra = [self.network.next_id() for _ in range(self.network.ids_per_message - 1)]
        self.network.sent[-1].extra_ids = extra
        return MessageResult(remote_id, extra_ids=extra)

    async def handle_matrix_edit(self, edit: MatrixEdit) -> MessageResult | None:
        await self._record("edit", edit.portal.id, edit, with_id=False)
        return None

    async def handle_matrix_redaction(self, redaction: MatrixRedaction) -> None:
        await self._record("redaction", redaction.portal.id, redaction, with_id=False)

    async def handle_matrix_reaction(self, reaction: MatrixReaction) -> MessageResult | None:
        return MessageResult(await self._record("reaction", reaction.portal.id, reaction))

    async def handle_matrix_reaction_remove(self, removal: MatrixReactionRemove) -> None:
        await self._record("reaction_remove", removal.portal.id, removal, with_id=False)

    async def handle_matrix_typing(self, typing: MatrixTyping) -> None:
        await self._record("typing", typing.portal.id, typing, with_id=False)

    async def handle_matrix_read_receipt(self, receipt: MatrixReadReceipt) -> None:
        await self._record("receipt", receipt.portal.id, receipt, with_id=False)

    async def handle_matrix_membership(self, change: MatrixMembership) -> None:
        await self._record("membership", change.portal.id, change, with_id=False)

    async def handle_matrix_room_meta(self, change: MatrixRoomMeta) -> None:
        await self._record("room_meta", change.portal.id, change, with_id=False)

    async def fetch_messages(
        self,
        portal: PortalKey,
        anchor: str | None,
        direction: str,
        limit: int,
        cursor: str | None = None,
    ) -> FetchResult:
        """Pages of ``network.history[chat]``; a cursor is an index into it."""
        self.network.fetches.append((portal.id, anchor, direction, limit, cursor))
        if self.network.fetch_gate is not None:
            await self.network.fetch_gate.wait()
        history = self.network.history.get(portal.id, [])
        ids = [m.id for m in history]
        if direction == FORWARD:
            start = (
                int(cursor) if cursor is not None else ids.index(anchor) + 1 if anchor in ids else 0
            )
            page = history[start : start + limit]
            end = start + len(page)
            return FetchResult(page, cursor=str(end), has_more=end < len(history))
        end = (
            int(cursor) if cursor is not None else ids.index(anchor) if anchor in ids else len(ids)
        )
        start = max(0, end - limit)
        return FetchResult(history[start:end], cursor=str(start), has_more=start > 0)

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        chat = self.network.chats.get(portal.id) or FakeChat(portal.id)
        return ChatInfo(
            name=chat.name,
            topic=chat.topic,
            avatar_url=chat.avatar_url,
            is_dm=chat.is_dm,
            parent=chat.parent,
            members=[
                ChatMember(
                    m,
                    chat.power.get(m, 0),
                    is_me=m == self.login.remote_id,
                    name=self.network.users.get(m),
                )
                for m in chat.members
            ],
            members_complete=chat.members_complete,
        )

    async def get_user_info(self, remote_user_id: str) -> UserInfo | None:
        return UserInfo(
            name=self.network.users.get(remote_user_id, remote_user_id),
            avatar_url=self.network.avatars.get(remote_user_id),
            is_bot=remote_user_id in self.network.bots,
        )

    # -- helpers for tests: make the remote side do things --------------------------------

    async def emit(self, event: RemoteEvent) -> None:
        await self.connector.bridge.queue_remote_event(self.login.id, event)

    async def remote_message(
        self, chat_id: str, sender: str, body: str, *, msg_id: str | None = None, **content: Any
    ) -> str:
        msg_id = msg_id or self.network.next_id()
        await self.emit(
            RemoteMessage(
                PortalKey(chat_id),
                EventSender(sender, is_me=sender == self.login.remote_id, login_id=self.login.id),
                id=msg_id,
                content=MessageContent(body=body, **content),
            )
        )
        return msg_id

    async def remote_parts(
        self, chat_id: str, sender: str, parts: list[MessagePart], *, msg_id: str | None = None
    ) -> str:
        """A remote message in parts (text and attachments), as one remote id."""
        msg_id = msg_id or self.network.next_id()
        await self.emit(
            RemoteMessage(
                PortalKey(chat_id),
                EventSender(sender, is_me=sender == self.login.remote_id, login_id=self.login.id),
                id=msg_id,
                parts=parts,
            )
        )
        return msg_id

    async def resync(self, chat_id: str) -> None:
        """The network reports the chat's info and members as they now stand."""
        info = await self.get_chat_info(PortalKey(chat_id))
        await self.emit(RemoteChatResync(PortalKey(chat_id), info=info))

    async def change_profile(
        self,
        remote_id: str,
        *,
        name: str | None = None,
        avatar_url: str | None = None,
        is_bot: bool | None = None,
        chat_id: str = "",
    ) -> None:
        """A remote user changes their profile (None: unchanged); the network reports it."""
        if name is not None:
            self.network.users[remote_id] = name
        if avatar_url is not None:
            self.network.avatars[remote_id] = avatar_url
        if is_bot is not None:
            (self.network.bots.add if is_bot else self.network.bots.discard)(remote_id)
        await self.emit(
            RemoteUserInfoChange(
                PortalKey(chat_id),
                EventSender(remote_id, login_id=self.login.id),
                name=name,
                avatar_url=avatar_url,
                is_bot=is_bot,
            )
        )


class FakeRenderingClient(FakeClient, RendersRelaySender):
    """A fake client whose network renders relayed senders itself (``relay_sender``)."""
