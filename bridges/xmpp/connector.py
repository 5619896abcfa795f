"""The XMPP connector: one XEP-0114 component for every bridged Matrix user.

The opposite shape to IRC: :meth:`XMPPConnector.start` opens the one component connection;
each Matrix user's login is a light :class:`~.client.XMPPClient` sending through it as
``{localpart}_{server}@<component>`` (see ``user_jid_template``). Logins are made on the fly
(:class:`AutoLogin`) when a Matrix user joins or speaks in an XMPP portal, or with
``login xmpp`` to choose a nick.

XMPP users are ghosts ``@_xmpp_<escaped JID>``: their bare JID when known, or their occupant
JID (``room@muc/nick``) in rooms that hide real JIDs. MUC portals are found by joining
``#_xmpp_<escaped room JID>:<domain>`` or with the ``xmpp-portal`` admin command; 1:1 chats
become DM portals (``xmpp-dm`` opens one from Matrix). Events for MUC portals are queued
without a login (they come from the shared component) and carry the network name.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from slixmpp import JID, Message, Presence
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream import StanzaBase

from bridgekit.contract.commands import Command
from bridgekit.contract.connector import (
    AliasResolver,
    AutoLogin,
    BridgeAPI,
    LoginFlow,
    LoginInfo,
    LoginProcess,
    NetworkClient,
    NetworkConnector,
    ThirdPartyHandler,
)
from bridgekit.contract.events import (
    ChatInfo,
    PortalKey,
    RemoteChatInfoChange,
    RemoteEvent,
    UserInfo,
)
from bridgekit.contract.ids import escape_localpart, template_regex, unescape_localpart
from bridgekit.outbox.ordering import OrderedExecutor

from . import config as cfg
from .client import XMPPClient
from .commands import connector_commands
from .component import GatewayComponent
from .identifiers import XMPPIdentifiers
from .identity import Puppet
from .idmap import IdMap
from .inbound import Inbound
from .jid import PuppetTemplate, clean_text, parse_room_jid
from .login import NickLogin, puppet_login
from .mam import ArchiveCollector, CatchUps
from .muc import MucManager
from .outbound import Outbound
from .presence import PresenceHandling
from .spaces import MucSpaces
from .state import XMPPLoginMeta

log = logging.getLogger("bridgekit.xmpp")

MUC_ROOMINFO = "http://jabber.org/protocol/muc#roominfo"


#: disco#info features of a MUC that keeps strangers out, and of one open to anyone.
CLOSED_MUC = frozenset({"muc_membersonly", "muc_passwordprotected"})
OPEN_MUC = frozenset({"muc_open", "muc_unsecured"})


class XMPPConnector(
    NetworkConnector,
    AliasResolver,
    AutoLogin,
    ThirdPartyHandler,
    XMPPIdentifiers,
    PresenceHandling,
):
    name: ClassVar[str] = "xmpp"
    display_name: ClassVar[str] = "XMPP"
    ghost_template: ClassVar[str] = "_xmpp_{jid}"
    alias_template: ClassVar[str | None] = "_xmpp_{jid}"
    login_metadata_type: ClassVar[type | None] = XMPPLoginMeta

    def __init__(self, bridge: BridgeAPI, config: Mapping[str, Any]) -> None:
        super().__init__(bridge, config)
        self.component_jid = str(self.setting("component_jid")).lower()
        self.puppets = PuppetTemplate(str(self.setting("user_jid_template")), self.component_jid)
        self.clients: dict[str, XMPPClient] = {}
        self._by_jid: dict[str, XMPPClient] = {}
        self.idmap = IdMap(bridge)
        self.muc = MucManager(self)
        self.muc_spaces = MucSpaces(self)
        self.inbound = Inbound(self)
        self.outbound = Outbound(self)
        self.archive = ArchiveCollector()
        self.catchup = CatchUps(self._release_held)
        self.executor = OrderedExecutor("xmpp-in")
        self._names: dict[str, str] = {}
        #: The vCard photo hash (XEP-0153) each contact's presence last advertised.
        self._photos: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.component = GatewayComponent(
            self.component_jid,
            str(self.setting("component_secret")),
            str(self.setting("server_host")),
            int(self.setting("server_port")),
            max_delay=float(self.setting("reconnect_max_delay")),
            auth_retry_delay=float(self.setting("auth_retry_delay")),
            on_message=self._on_message,
            on_presence=self._on_presence,
            on_online=self._on_online,
            on_offline=self._on_offline,
        )
        self.component.plugin["bridgekit_identity"].lookup = self._puppet
        # Asked for every Matrix sender the router sees: compiled once.
        self._ghost_re = template_regex(str(self.setting("ghost_template")))

    # -- config and ids -----------------------------------------------------------------------

    def setting(self, key: str) -> Any:
        return cfg.setting(self.config, key)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return cfg.validate(config)

    @classmethod
    def namespace_templates(cls, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        return [str(cfg.setting(config, "ghost_template"))], [
            str(cfg.setting(config, "alias_template"))
        ]

    def ghost_localpart(self, remote_user_id: str) -> str:
        return str(self.setting("ghost_template")).replace(
            "{jid}", escape_localpart(remote_user_id)
        )

    def ghost_remote_id(self, localpart: str) -> str | None:
        m = self._ghost_re.match(localpart)
        return unescape_localpart(m.group("jid")) if m else None

    def alias_localpart(self, room: str) -> str:
        return str(self.setting("alias_template")).replace("{jid}", escape_localpart(room))

    def room_address(self, value: str) -> str | None:
        value = value.strip()
        muc = str(self.setting("muc_service"))
        if "@" not in value and muc:
            value = f"{value}@{muc}"
        jid = parse_room_jid(value)
        return jid.bare if jid is not None else None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.component.start()
        # Give the first connection a moment, so early sends need not wait; never block on it.
        await self.component.wait_online(5)

    async def stop(self) -> None:
        await self.executor.stop(timeout=5)
        for task in list(self._tasks):
            task.cancel()
        await self.component.stop()
        # The rooms' answers to joins still waiting are no longer handled (the stanza
        # executor stopped): the joins end now, and what waited for them is cut short
        # (wait_online) instead of holding the runtime's stop for its whole grace period.
        self.muc.reset()
        await self.outbound.upload.close()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_online(self) -> None:
        self.outbound.upload.reset()
        for client in list(self.clients.values()):
            client.on_online()

    def _on_offline(self, reason: str) -> None:
        self.outbound.upload.reset()
        self.catchup.reset()
        self.muc.reset()
        for client in list(self.clients.values()):
            client.on_offline(reason)

    async def wait_online(self) -> None:
        if not await self.component.wait_online(float(self.setting("send_timeout"))):
            if self.component.stopped.is_set():
                # The bridge stops: the work is cut short as the stop would cut it after its
                # grace period, not failed; the runtime replays its event at the next start.
                raise asyncio.CancelledError("the bridge is stopping")
            raise ConnectionError(
                f"the XMPP server is unreachable ({self.component.last_error or 'reconnecting'})"
            )

    # -- logins -------------------------------------------------------------------------------

    def login_flows(self) -> list[LoginFlow]:
        return [LoginFlow("nick", "Nick", "Choose your nick in XMPP rooms")]

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        return NickLogin(self, user_mxid)

    async def load_login(self, login: LoginInfo) -> NetworkClient:
        client = self.clients.get(login.id)
        if client is None:
            client = XMPPClient(self, login)
        else:
            old_nick = client.login.metadata.get("nick")
            client.login = login
            if login.metadata.get("nick") != old_nick:
                self.spawn(client.change_nick())
        # Known by its JID at once: stanzas for it may come before connect() has run.
        self.register(client)
        return client

    async def logout(self, login: LoginInfo) -> None:
        client = self.clients.pop(login.id, None)
        if client is not None:
            await self.idmap.set_rooms(login.id, {})

    def register(self, client: XMPPClient) -> None:
        self.clients[client.login.id] = client
        self._by_jid[client.jid] = client

    def unregister(self, client: XMPPClient) -> None:
        if self._by_jid.get(client.jid) is client:
            del self._by_jid[client.jid]

    def client_by_jid(self, bare: str) -> XMPPClient | None:
        return self._by_jid.get(str(bare).lower())

    def client_of_user(self, user_mxid: str) -> XMPPClient | None:
        return next((c for c in self.clients.values() if c.login.user_mxid == user_mxid), None)

    async def auto_login(self, user_mxid: str, portal: PortalKey) -> LoginInfo | None:
        if portal.receiver:
            return None  # a 1:1 chat belongs to the login it was opened for
        existing = self.client_of_user(user_mxid)
        if existing is not None:
            # The user has a login, just not this room yet: it joins it. Returning the same
            # login makes the runtime reuse the client (load_login hands back this object).
            log.info("%s joins %s with their XMPP login", user_mxid, portal.id)
            await existing.want_room(portal.id)
            return existing.login
        try:
            return puppet_login(self, user_mxid)
        except ValueError as e:
            log.warning("No XMPP login for %s: %s", user_mxid, e)
            return None

    def _puppet(self, jid: JID) -> Puppet | None:
        client = self.client_by_jid(jid.bare)
        if client is None:
            return None
        name = client.login.metadata.get("nick") or client.login.user_mxid
        return Puppet(client.jid, str(name))

    # -- stanzas in ---------------------------------------------------------------------------

    def _submit(self, key: Any, job: Any) -> None:
        async def run() -> None:
            try:
                await job()
            except Exception:
                log.exception("Failed to handle a stanza for %s", key)

        self.executor.submit(key, run)

    def _on_message(self, msg: Message) -> None:
        if self.archive.offer(msg):
            return
        room = self.muc.rooms.get(msg["from"].bare)
        if room is not None and self.catchup.offer(msg, room.ours):
            return  # the room is catching up on its archive: after that
        self._dispatch(msg)

    def _release_held(self, messages: list[Message]) -> None:
        for msg in messages:
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        frm, to = msg["from"], msg["to"]
        key = (
            frm.bare
            if msg["type"] == "groupchat" or frm.bare in self.muc.rooms
            else (frm.bare, to.bare)
        )
        self._submit(key, lambda: self.inbound.handle_message(msg))

    def _on_presence(self, pres: Presence) -> None:
        frm, to = pres["from"], pres["to"]
        key = frm.bare if frm.bare in self.muc.rooms else (frm.bare, to.bare)
        self._submit(key, lambda: self.handle_presence(pres))

    def send_error(self, stanza: StanzaBase, condition: str, text: str = "") -> None:
        """Answer ``stanza`` with an error (never an error to an error)."""
        if stanza.xml.get("type") == "error" or not self.component.online.is_set():
            return
        reply = stanza.reply(clear=True)
        if stanza["id"]:
            reply["id"] = stanza["id"]
        reply["type"] = "error"
        reply["error"]["type"] = "modify" if condition == "not-acceptable" else "cancel"
        reply["error"]["condition"] = condition
        if text:
            reply["error"]["text"] = text
        reply.send()

    async def queue(self, login_id: str | None, event: RemoteEvent) -> None:
        event.network = self.name
        await self.bridge.queue_remote_event(login_id, event)

    # -- rooms and users --------------------------------------------------------------------------

    async def room_exists(self, room: str) -> bool:
        if not await self.component.wait_online(5):
            return False
        try:
            info = await self.component.plugin["bridgekit_identity"].fetch_info(room)
        except (IqError, IqTimeout):
            return False
        return any(ident[0] == "conference" for ident in info["identities"])

    async def room_info(self, room: str) -> ChatInfo:
        info = ChatInfo(parent=await self.muc_spaces.space_of(room))
        try:
            disco = await self.component.plugin["bridgekit_identity"].fetch_info(room)
        except (IqError, IqTimeout):
            return info
        for category, _, _, name in disco["identities"]:  # (category, type, lang, name)
            if category == "conference" and name:
                info.name = clean_text(name)[:255]
        features = set(disco["features"])
        if features & CLOSED_MUC:  # XEP-0045 6.4: members-only or password-protected
            info.joinable = False
        elif features & OPEN_MUC == OPEN_MUC:
            info.joinable = True
        for form in disco.xml.findall("{jabber:x:data}x"):
            for fld in form.findall("{jabber:x:data}field"):
                if fld.get("var") == "muc#roominfo_subject":
                    info.topic = clean_text(fld.findtext("{jabber:x:data}value") or "") or None
        state = self.muc.rooms.get(room)
        if state is not None:
            info.members, info.members_complete = state.members(), state.members_complete
        return info

    async def sync_room_info(self, room: str) -> None:
        """The MUC's name and openness, when its listener joins and when its configuration
        changes (status 104): the portal room's name and join rule follow."""
        info = await self.room_info(room)
        if info.name or info.joinable is not None:
            change = RemoteChatInfoChange(PortalKey(room), name=info.name, joinable=info.joinable)
            await self.queue(None, change)

    def contact_name(self, jid: str) -> str | None:
        return self._names.get(jid)

    async def user_info(self, remote_id: str) -> UserInfo:
        if "/" in remote_id:  # an occupant: the nick is all there is
            room, nick = remote_id.split("/", 1)
            if nick.startswith("~"):  # a generated id (occupants.py): ask the room who it is
                nick = self.muc.nick_of_remote(room, remote_id) or "XMPP user"
            return UserInfo(name=nick or remote_id)
        identity = self.component.plugin["bridgekit_identity"]
        vcard = await identity.fetch_vcard(remote_id) if self.component.online.is_set() else None
        name = (
            (vcard.name if vcard else None) or self._names.get(remote_id) or remote_id.split("@")[0]
        )
        self._names[remote_id] = name
        avatar = None
        if vcard is not None and vcard.photo and self.setting("avatars"):
            try:
                avatar = await self.bridge.upload_avatar(vcard.photo, vcard.photo_type)
            except Exception as e:
                log.info("Could not upload the avatar of %s: %s", remote_id, e)
        return UserInfo(name=name, avatar_url=avatar)

    # -- portals by alias, third-party lookups, commands ----------------------------------------

    async def resolve_alias(self, alias_localpart: str) -> tuple[PortalKey, str | None] | None:
        m = template_regex(str(self.setting("alias_template"))).match(alias_localpart)
        raw = unescape_localpart(m.group("jid")) if m else None
        room = self.room_address(raw) if raw else None
        # One alias per room, two with muc_service (the short form): a JID is caseless, so
        # every other spelling named the same room, and each query for one added an alias.
        if room is None or raw not in (room, self._short_room(room)):
            return None
        if not await self.room_exists(room):
            return None
        return PortalKey(room), None

    def _short_room(self, room: str) -> str | None:
        """``room`` for ``room@<muc_service>``: the form the README allows with muc_service."""
        node, _, domain = room.partition("@")
        muc = str(self.setting("muc_service"))
        return node if muc and domain == muc else None

    def protocol_info(self) -> dict[str, Any]:
        return {
            "user_fields": ["jid"],
            "location_fields": ["room"],
            "icon": "",
            "field_types": {
                "jid": {"regexp": r"[^@/\s]+@[^@/\s]+", "placeholder": "user@example.org"},
                "room": {
                    "regexp": r"[^@/\s]+(@[^@/\s]+)?",
                    "placeholder": "room@conference.example.org",
                },
            },
            "instances": [{"network_id": "xmpp", "desc": "XMPP", "fields": {}}],
        }

    async def lookup_location(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        room = self.room_address(str(fields.get("room", "")))
        if room is None or not await self.room_exists(room):
            return []
        alias = f"#{self.alias_localpart(room)}:{self.bridge.domain}"
        return [{"alias": alias, "protocol": self.name, "fields": {"room": room}}]

    async def lookup_user(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        jid = str(fields.get("jid", "")).strip()
        if not re.fullmatch(r"[^@/\s]+@[^@/\s]+", jid):
            return []
        mxid = f"@{self.ghost_localpart(jid.lower())}:{self.bridge.domain}"
        return [{"userid": mxid, "protocol": self.name, "fields": {"jid": jid}}]

    def commands(self) -> list[Command]:
        return connector_commands(self)
