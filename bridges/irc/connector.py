"""The IRC connector: config, ids, aliases, automatic per-user connections, commands.

Ids (``server`` is the config's name for an IRC server, names are case-folded the way the
server folds them, so ``Bob`` and ``bob`` are one user and ``#Chan`` and ``#chan`` one room):

* ghost of IRC user ``Bob``: remote id ``local/bob`` -> ``@_irc_local_bob:domain``, display
  name ``Bob`` (as typed);
* channel portal: ``PortalKey("local/#chan")``, alias ``#_irc_local_=23chan:domain``;
* private messages: ``PortalKey("local/bob", receiver=<login id>)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from bridgekit.contract.connector import (
    AliasResolver,
    AutoLogin,
    BridgeAPI,
    ChatIdParser,
    LoginFlow,
    LoginInfo,
    LoginProcess,
    NetworkClient,
    NetworkConnector,
    ThirdPartyHandler,
)
from bridgekit.contract.events import PortalKey
from bridgekit.contract.ids import localpart_of, template_regex

from . import config as irc_config
from .config import DEFAULT_ALIAS_TEMPLATE, DEFAULT_GHOST_TEMPLATE, ServerConfig
from .crypto import SecretBox, SecretError
from .identifiers import IRCIdentifiers
from .names import (
    InvalidNameError,
    casefold,
    escape_localpart,
    is_channel,
    sanitize_nick,
    unescape_localpart,
    validate_channel,
    validate_channel_key,
)
from .registries import ConnectionRegistries
from .state import IRCLoginMeta, LoginState

if TYPE_CHECKING:
    from bridgekit.contract.commands import Command

    from .puppet import IRCClient

log = logging.getLogger("bridgekit.irc")


class IRCConnector(
    NetworkConnector,
    AliasResolver,
    AutoLogin,
    ChatIdParser,
    ThirdPartyHandler,
    IRCIdentifiers,
    ConnectionRegistries,
):
    name: ClassVar[str] = "irc"
    display_name: ClassVar[str] = "IRC"
    ghost_template: ClassVar[str] = DEFAULT_GHOST_TEMPLATE
    alias_template: ClassVar[str | None] = DEFAULT_ALIAS_TEMPLATE
    login_metadata_type: ClassVar[type | None] = IRCLoginMeta

    def __init__(self, bridge: BridgeAPI, config: Mapping[str, Any]) -> None:
        super().__init__(bridge, config)
        # A paste arrives as many lines: while a room's sends to Matrix are backed up, the
        # waiting lines of one nick go out as one multi-line event (bridgekit/outbox/coalesce.py).
        self.merge_backlog = bool(config.get("merge_lines", True))
        self.servers: dict[str, ServerConfig] = irc_config.parse(config)
        self.clients: dict[str, IRCClient] = {}
        self._init_registries()
        #: (portal id, sender id) -> the timer that ends an IRC user's typing: see
        #: ``IncomingMixin._typing_tag``.
        self.typing_expiry: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._stopping = False
        #: Nick, password, channels and their keys per login, on the login's row (state.py).
        self.state = LoginState(bridge)
        self._full_warned: set[str] = set()  # servers whose max_connections was logged
        self._ghost_res = [
            (name, template_regex(sc.ghost_localpart_template()))
            for name, sc in self.servers.items()
        ]
        self._alias_res = [
            (name, template_regex(sc.alias_localpart_template()))
            for name, sc in self.servers.items()
        ]
        try:
            self.secrets: SecretBox | None = SecretBox(bridge.secret_key("irc-passwords"))
        except (NotImplementedError, AttributeError):
            self.secrets = None

    # -- config and ids ----------------------------------------------------------------------

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        return irc_config.validate(config)

    @classmethod
    def namespace_templates(cls, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        try:
            servers = irc_config.parse(config) if not irc_config.validate(config) else {}
        except (TypeError, ValueError):
            servers = {}
        if not servers:
            # Any server: what the registration covers before servers are configured.
            return [DEFAULT_GHOST_TEMPLATE], [DEFAULT_ALIAS_TEMPLATE]
        ghosts = sorted({sc.ghost_localpart_template() for sc in servers.values()})
        aliases = sorted({sc.alias_localpart_template() for sc in servers.values()})
        return ghosts, aliases

    def fold(self, name: str, server: str | None = None) -> str:
        return casefold(name)

    def ghost_localpart(self, remote_user_id: str) -> str:
        server, _, nick = remote_user_id.partition("/")
        sc = self.servers.get(server)
        template = (
            sc.ghost_localpart_template()
            if sc
            else DEFAULT_GHOST_TEMPLATE.replace("{server}", server)
        )
        return template.replace("{nick}", escape_localpart(nick))

    def ghost_remote_id(self, localpart: str) -> str | None:
        for server, regex in self._ghost_res:
            m = regex.match(localpart)
            if not m:
                continue
            try:
                nick = unescape_localpart(m.group("nick"))
            except InvalidNameError:
                continue
            if nick and self.fold(nick) == nick:  # only the canonical (folded) spelling
                return f"{server}/{nick}"
        return None

    def parse_chat_id(self, text: str) -> PortalKey:
        """``bridge irc <server> <#chan>`` (or ``<server>/<#chan>``, or ``<#chan>`` with one
        server): the channel is checked strictly and case-folded, so ``#Chan`` and ``#chan``
        plumb the one portal that the alias and IRC's own lines use."""
        text = text.strip()
        if " " in text:
            server, _, channel = text.partition(" ")
        elif text[:1] in ("#", "&"):
            if len(self.servers) != 1:
                raise ValueError(f"which server? Put one of {', '.join(self.servers)} first")
            server, channel = next(iter(self.servers)), text
        else:
            server, _, channel = text.partition("/")
        server, channel = server.strip(), channel.strip()
        if server not in self.servers:
            raise ValueError(f"unknown server {server!r}; one of {', '.join(self.servers)}")
        validate_channel(channel)  # InvalidNameError is a ValueError that says why
        return PortalKey(f"{server}/{self.fold(channel)}")

    async def resolve_alias(self, alias_localpart: str) -> tuple[PortalKey, str | None] | None:
        """``_irc_libera_=23python`` (escaped) or ``_irc_libera_#python`` (as people type it):
        a room alias may hold ``#``, and an escaped name never does, so both read one way."""
        for server, regex in self._alias_res:
            m = regex.match(alias_localpart)
            if not m:
                continue
            raw = m.group("channel")
            try:
                typed = is_channel(raw)
                channel = validate_channel(raw if typed else unescape_localpart(raw))
            except InvalidNameError:
                continue
            if self.fold(channel) != channel:
                continue  # one alias per channel: the folded spelling
            return PortalKey(f"{server}/{channel}"), None
        return None

    def alias_localpart_for(self, server: str, channel: str) -> str:
        template = self.servers[server].alias_localpart_template()
        return template.replace("{channel}", escape_localpart(self.fold(channel)))

    def alias_for(self, server: str, channel: str) -> str:
        return f"#{self.alias_localpart_for(server, channel)}:{self.bridge.domain}"

    # -- passwords (irc storepass) -------------------------------------------------------------

    async def store_password(self, login_id: str, password: str | None) -> None:
        if self.secrets is None:
            raise RuntimeError("this bridge runtime cannot derive an encryption key")
        value = self.secrets.encrypt(password, context=login_id) if password else None
        await self.state.update(login_id, password=value)

    async def load_password(self, login_id: str) -> str | None:
        token = (await self.state.get(login_id)).password
        if not token or self.secrets is None:
            return None
        try:
            password = self.secrets.decrypt(token, context=login_id)
        except SecretError:
            log.warning("Stored password of %s cannot be decrypted (as_token changed?)", login_id)
            return None
        if self.secrets.needs_upgrade(token):
            await self.store_password(login_id, password)
            log.info("Stored password of %s rewritten with AES-GCM (was v0)", login_id)
        return password

    # -- channel keys (+k) ----------------------------------------------------------------------

    async def store_channel_keys(self, login_id: str, keys: Mapping[str, str]) -> None:
        """A user's channel keys, encrypted at rest like their password. Without an
        encryption key (a runtime that cannot derive one) they live in memory only."""
        if self.secrets is None:
            return
        token = None
        if keys:
            token = self.secrets.encrypt(json.dumps(dict(keys)), context=f"keys:{login_id}")
        await self.state.update(login_id, channel_keys=token)

    async def load_channel_keys(self, login_id: str) -> dict[str, str]:
        token = (await self.state.get(login_id)).channel_keys
        if not token or self.secrets is None:
            return {}
        try:
            stored = json.loads(self.secrets.decrypt(token, context=f"keys:{login_id}"))
        except (SecretError, ValueError):
            log.warning("Channel keys of %s cannot be read (as_token changed?)", login_id)
            return {}
        if self.secrets.needs_upgrade(token):
            await self.store_channel_keys(login_id, stored)
            log.info("Channel keys of %s rewritten with AES-GCM (was v0)", login_id)
        keys = {}
        for folded, key in stored.items():
            with contextlib.suppress(InvalidNameError):
                keys[folded] = validate_channel_key(key)
        return keys

    # -- logins --------------------------------------------------------------------------------

    def login_id_for(self, server: str, user_mxid: str) -> str:
        digest = hashlib.sha256(f"{server}\0{user_mxid}".encode()).hexdigest()[:16]
        return f"irc-{server}-{digest}"

    async def nick_for(self, server: str, user_mxid: str) -> str:
        sc = self.servers[server]
        localpart = localpart_of(user_mxid)
        displayname = None
        lookup = getattr(self.bridge, "matrix_displayname", None)
        if lookup is not None:
            try:
                displayname = await lookup(user_mxid)
            except Exception:
                log.debug("No display name for %s", user_mxid)
        wanted = sc.nick_template.replace("{displayname}", displayname or localpart).replace(
            "{localpart}", localpart
        )
        return sanitize_nick(wanted)

    async def make_login(self, user_mxid: str, server: str, nick: str | None = None) -> LoginInfo:
        nick = nick or await self.nick_for(server, user_mxid)
        return LoginInfo(
            id=self.login_id_for(server, user_mxid),
            user_mxid=user_mxid,
            network=self.name,
            remote_id=f"{server}/{self.fold(nick)}",
            remote_name=nick,
            metadata={"server": server},
        )

    async def auto_login(self, user_mxid: str, portal: PortalKey) -> LoginInfo | None:
        server = portal.id.partition("/")[0]
        sc = self.servers.get(server)
        if sc is None or sc.relay_only:
            return None
        if (server, user_mxid) in self._by_user:
            return None
        if self._per_server.get(server, 0) >= sc.max_connections:
            if server not in self._full_warned:  # once, not for every message of every user
                self._full_warned.add(server)
                log.warning(
                    "%s: max_connections (%d) reached; new users get no connection",
                    server,
                    sc.max_connections,
                )
            log.debug("%s: max_connections reached; %s gets no connection", server, user_mxid)
            return None
        return await self.make_login(user_mxid, server)

    def login_flows(self) -> list[LoginFlow]:
        return [LoginFlow("nick", "Nick", "Connect to an IRC server with a nick of your choice")]

    async def create_login(self, user_mxid: str, flow_id: str) -> LoginProcess:
        from .commands import IRCLogin

        return IRCLogin(self, user_mxid)

    async def load_login(self, login: LoginInfo) -> NetworkClient:
        from .puppet import IRCClient

        server = str(login.metadata.get("server") or login.remote_id.partition("/")[0])
        if server not in self.servers:
            raise ValueError(f"IRC server {server!r} is not in the config any more")
        await self.state.stored(login.id)
        client = IRCClient(self, login)
        old = self.clients.get(login.id)
        if old is not None and old is not client:
            self._unindex(old)
            del self.clients[login.id]
            await old.disconnect()
        self.clients[login.id] = client
        self._index(client)
        return client

    async def logout(self, login: LoginInfo) -> None:
        client = self.clients.get(login.id)
        if client is not None:
            self._unindex(client)
            del self.clients[login.id]
            await client.disconnect()
        # Nick, password, channels and keys go with the login's row.
        self.state.forget(login.id)

    async def stop(self) -> None:
        self._stopping = True
        for client in list(self.clients.values()):
            await client.disconnect()

    def commands(self) -> list[Command]:
        from .commands import irc_commands

        return irc_commands(self)

    # -- third-party lookups -------------------------------------------------------------------

    def protocol_info(self) -> dict[str, Any]:
        return {
            "user_fields": ["server", "nick"],
            "location_fields": ["server", "channel"],
            "icon": "",
            "field_types": {
                "server": {"regexp": r"[a-z0-9.\-]+", "placeholder": "libera"},
                "nick": {"regexp": r"[^\s#&]+", "placeholder": "alice"},
                "channel": {"regexp": r"[#&][^\s,]+", "placeholder": "#matrix"},
            },
            "instances": [
                {"network_id": name, "desc": sc.host, "fields": {"server": name}}
                for name, sc in self.servers.items()
            ],
        }

    async def lookup_location(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        server, channel = fields.get("server", ""), fields.get("channel", "")
        if server not in self.servers:
            return []
        try:
            validate_channel(channel)
        except InvalidNameError:
            return []
        return [
            {
                "alias": self.alias_for(server, channel),
                "protocol": self.name,
                "fields": {"server": server, "channel": channel},
            }
        ]

    async def lookup_user(self, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        server, nick = fields.get("server", ""), fields.get("nick", "")
        if server not in self.servers or not nick:
            return []
        mxid = f"@{self.ghost_localpart(f'{server}/{self.fold(nick)}')}:{self.bridge.domain}"
        return [{"userid": mxid, "protocol": self.name, "fields": {"server": server, "nick": nick}}]
