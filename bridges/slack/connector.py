"""The Slack connector: workspaces through their app, people through their own tokens.

Each workspace is bridged by an app login (``login slack app``: bot token + app-level token):
it receives the workspace's events over Socket Mode and relays Matrix users who have no
login. A person's own token (``login slack user``) makes the bridge speak as them on Slack,
and brings their own Slack messages to Matrix from their Matrix account (double puppeting).

Portals are channels (one per channel, shared by the workspace's logins), DMs and group DMs
(one per personal login). Ghosts are ``@_slack_<team>-<user>``; see :mod:`.ids`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

from bridgekit.contract.connector import (
    BridgeAPI,
    DefaultRelay,
    LoginFlow,
    LoginInfo,
    LoginProcess,
    NetworkClient,
    NetworkConnector,
)
from bridgekit.contract.events import PortalKey

from . import config as cfg
from .chat_changes import ChatChanges
from .chats import Chats
from .client import SlackClient
from .dms import DirectChats, event_channel
from .edits import Edits
from .events_http import EventsListener
from .files import SlackFiles
from .history import History
from .http import WebSessions
from .ids import parse_chat_rid, parse_user_rid, user_rid
from .inbound import Inbound
from .login import APP_FLOW, USER_FLOW, SlackLogin
from .members import Members
from .ordering import ChannelTurns
from .outbound import Outbound
from .reactions import Reactions
from .start_chat import SlackStartChat
from .state import SlackLoginMeta, SlackLoginState
from .user_updates import UserUpdates
from .users import UserDirectory

log = logging.getLogger("bridgekit.slack")

#: Event ids remembered per process to recognise redeliveries and the same event reaching
#: two app logins of one workspace.
SEEN_EVENTS = 10_000


class SlackConnector(NetworkConnector, DefaultRelay, SlackStartChat):
    name: ClassVar[str] = "slack"
    display_name: ClassVar[str] = "Slack"
    ghost_template: ClassVar[str] = "_slack_{id}"
    default_config: ClassVar[Mapping[str, Any]] = cfg.DEFAULTS
    #: A login's state that outlives a restart (a token Slack refused).
    login_metadata_type: ClassVar[type | None] = SlackLoginState

    def __init__(self, bridge: BridgeAPI, config: Mapping[str, Any]) -> None:
        super().__init__(bridge, config)
        self.clients: dict[str, SlackClient] = {}
        self.web_sessions = WebSessions(config)
        self.users = UserDirectory()
        self.chats = Chats(self)
        self.inbound = Inbound(self)
        self.outbound = Outbound(self)
        self.dms = DirectChats(self)
        self.files = SlackFiles(self)
        self.files.register()
        self.history = History(self)
        self.chat_changes = ChatChanges(self)
        self.members = Members(self)
        self.user_updates = UserUpdates(self)
        self.edits = Edits(self)
        self.edits.register()
        self.reactions = Reactions(self)
        self.reactions.register()
        self._seen: OrderedDict[str, None] = OrderedDict()
        #: Events being stored now, by id: a redelivery waits for the first delivery.
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self.turns = ChannelTurns()
        self.events_api = EventsListener(self)

    # -- config --------------------------------------------------------------------------------

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return cfg.validate(config)

    @classmethod
    def namespace_templates(cls, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        return [str(cfg.setting(config, "ghost_template"))], []

    async def start(self) -> None:
        await self.events_api.start()

    async def stop(self) -> None:
        await self.events_api.stop()
        await self.web_sessions.close()

    # -- logins --------------------------------------------------------------------------------

    def login_flows(self) -> list[LoginFlow]:
        return [
            LoginFlow(APP_FLOW, "Workspace app", "bot token + app-level token (Socket Mode)"),
            LoginFlow(USER_FLOW, "Your Slack account", "your own user token (xoxp-)"),
        ]

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        if flow_id not in (APP_FLOW, USER_FLOW):
            raise ValueError(f"unknown login flow {flow_id!r}: app or user")
        return SlackLogin(self, user_mxid, flow_id)

    async def load_login(self, login: LoginInfo) -> NetworkClient:
        client = SlackClient(self, login)
        self.clients[login.id] = client
        return client

    async def logout(self, login: LoginInfo) -> None:
        client = self.clients.pop(login.id, None)
        if client is not None and client.meta.kind == USER_FLOW and not client.dead:
            try:
                await client.call("auth.revoke")
            except Exception as e:  # noqa: BLE001 - logging out anyway
                log.info("Could not revoke the token of %s: %s", login.id, e)

    @staticmethod
    def meta_from_dict(data: Mapping[str, Any]) -> SlackLoginMeta:
        known = {f.name for f in dataclasses.fields(SlackLoginMeta)}
        return SlackLoginMeta(**{k: v for k, v in data.items() if k in known})

    @staticmethod
    def meta_to_dict(meta: SlackLoginMeta) -> dict[str, Any]:
        return dataclasses.asdict(meta)

    def find_login(self, user_mxid: str, remote_id: str, kind: str) -> str | None:
        """The id of ``user_mxid``'s existing login for the same Slack identity, if any (a new
        login with the same tokens or new ones replaces it)."""
        for client in self.clients.values():
            login = client.login
            if (login.user_mxid, login.remote_id, client.meta.kind) == (
                user_mxid,
                remote_id,
                kind,
            ):
                return login.id
        return None

    # -- who is who ------------------------------------------------------------------------------

    def app_clients(self, team: str) -> list[SlackClient]:
        return [c for c in self.clients.values() if c.is_app and c.team_id == team and not c.dead]

    def personal_login(self, team: str, user: str) -> str | None:
        """The id of the personal login of Slack user ``user`` (their messages come from their
        Matrix account), if one is connected."""
        for client in self.clients.values():
            meta = client.meta
            if meta.kind == USER_FLOW and meta.team_id == team and meta.user_id == user:
                return client.login.id
        return None

    def matrix_user_of(self, team: str, user: str) -> str:
        """Who a Slack user is on Matrix: the Matrix user of their personal login, else their
        ghost."""
        login = self.personal_login(team, user)
        if login is not None:
            return self.clients[login].login.user_mxid
        return self.bridge.ghost_mxid(user_rid(team, user))

    def slack_user_of(self, team: str, mxid: str) -> str | None:
        """The Slack user id of a Matrix user in ``team``: a ghost's, or a personal login's."""
        localpart = mxid[1:].split(":", 1)[0] if mxid.startswith("@") else ""
        rid = self.ghost_remote_id(localpart) if localpart else None
        if rid is not None:
            parsed = parse_user_rid(rid)
            if parsed is not None and parsed[0] == team:
                return parsed[1]
            return None
        for client in self.clients.values():
            if (
                client.login.user_mxid == mxid
                and client.meta.kind == USER_FLOW
                and client.team_id == team
            ):
                return client.meta.user_id
        return None

    def is_own_relay(self, client: SlackClient, event: Mapping[str, Any]) -> bool:
        """Whether a message was posted by one of our apps (a relayed Matrix message)."""
        bot_id = event.get("bot_id")
        if not bot_id:
            return False
        return any(c.meta.bot_id == bot_id for c in self.clients.values() if c.is_app)

    def dm_receiver(self, client: SlackClient, event: Mapping[str, Any]) -> str:
        """The login a DM portal belongs to: a member's personal login, or the app login for
        a DM with the bot (the other members' portals get copies: :meth:`DirectChats.copies`)."""
        receivers = self.dms.receivers(client, event_channel(event))
        return receivers[0] if receivers else client.login.id

    def default_relay_login(self, portal: PortalKey) -> str | None:
        if portal.receiver:
            return None
        parsed = parse_chat_rid(portal.id)
        if parsed is None:
            return None
        apps = self.app_clients(parsed[0])
        return apps[0].login.id if apps else None

    # -- events ----------------------------------------------------------------------------------

    def first_sight(self, event_id: str) -> bool:
        """True the first time an event id is seen (then remembered, bounded)."""
        if event_id in self._seen:
            return False
        self._seen[event_id] = None
        if len(self._seen) > SEEN_EVENTS:
            self._seen.popitem(last=False)
        return True

    def app_for_payload(
        self, client: SlackClient, payload: Mapping[str, Any]
    ) -> SlackClient | None:
        """The app login a payload belongs to: its workspace's (``team_id``); one app token
        may serve several workspaces, each with its own app login."""
        team = payload.get("team_id")
        if not team or team == client.team_id:
            return client
        apps = self.app_clients(str(team))
        return apps[0] if apps else None

    async def receive(self, client: SlackClient, payload: dict[str, Any]) -> None:
        """One Events API payload from one of the apps (Socket Mode or HTTP). Returns once
        what it means is stored; raises if it was not (the delivery must not be acked).

        A conversation's events are handled one at a time in the order they arrived
        (:mod:`.ordering`): the turn is taken before anything here waits, so a message
        whose files download, or whose mention needs ``users.info``, is not overtaken by the
        next one; other conversations go on meanwhile."""
        event = payload.get("event")
        channel = event_channel(event) if isinstance(event, dict) else ""
        async with self.turns.turn(f"{client.team_id}:{channel}" if channel else ""):
            await self._receive(client, payload)

    async def _receive(self, client: SlackClient, payload: dict[str, Any]) -> None:
        await client.live_gate.wait()  # behind the catch-ups (history.py)
        event_id = str(payload.get("event_id") or "")
        running = self._in_flight.get(event_id) if event_id else None
        if running is not None:
            # Redelivered while the first delivery is still being stored (a slow file
            # download): answer when that one is stored, and fail (no ack, so Slack sends it
            # again) if it fails, rather than acknowledge an event nothing stored.
            await asyncio.shield(running)
            return
        if event_id and not self.first_sight(event_id):
            log.debug("Event %s seen already", event_id)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved
        if event_id:
            self._in_flight[event_id] = done
        try:
            await self.dms.learn(client, payload)
            await self.inbound.handle(client, payload)
        except BaseException as e:
            self._seen.pop(event_id, None)  # not stored: let the redelivery through
            done.set_exception(RuntimeError(f"event {event_id} was not stored: {e!r}"))
            raise
        else:
            done.set_result(None)
        finally:
            self._in_flight.pop(event_id, None)
