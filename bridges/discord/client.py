"""One Discord login: a bot (the admin's) or a person's own account.

A bot login receives the events of the guilds it was asked to bridge
(``discord bridge-guild``) and relays Matrix users who have no login of their own through a
webhook per channel (Discord shows the relayed name and avatar: ``RendersRelaySender``); its
own Matrix user is relayed the same way (``RelaysOwnUser``), not shown as the bot. A personal
login speaks as its user.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.connector import (
    BridgeStateEvent,
    LoginInfo,
    NetworkClient,
    RelaysOwnUser,
    RendersRelaySender,
)
from bridgekit.contract.events import ChatInfo, MatrixMessage, PortalKey, RemoteUserID, UserInfo
from bridgekit.contract.results import MessageResult

from .api import point_discord_py, user_token_trace
from .deletes import DiscordDeletes
from .edits import DiscordEdits
from .gateway import GatewayClient
from .state import BOT, DiscordLoginMeta, DiscordLoginState

if TYPE_CHECKING:
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord")


class DiscordClient(NetworkClient, RendersRelaySender, RelaysOwnUser, DiscordEdits, DiscordDeletes):
    connector: DiscordConnector

    def __init__(self, connector: DiscordConnector, login: LoginInfo) -> None:
        super().__init__(connector, login)
        self.meta: DiscordLoginMeta = connector.meta_from_dict(login.metadata)
        self.state = DiscordLoginState()
        self.gateway: GatewayClient | None = None
        self._runner: asyncio.Task[None] | None = None
        self.connected = False
        #: Set once Discord refused the token: nothing retries until the user logs in again.
        self.dead = False

    @property
    def is_bot(self) -> bool:
        return self.meta.kind == BOT

    @property
    def user_id(self) -> int:
        return int(self.meta.user_id)

    def bridges_guild(self, guild_id: int | None) -> bool:
        """Whether this login bridges ``guild_id``'s channels (a bot: the guilds bridged with
        ``discord bridge-guild``)."""
        return guild_id is not None and str(guild_id) in self.state.guilds

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        self.state = await self.connector.bridge.login_metadata(self.login.id)
        if self.dead or self.state.holds_for(self.meta):
            self.dead = True
            return
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTING)
        point_discord_py(self.connector.config)
        gateway = GatewayClient(
            lambda event, args: self.connector.inbound.route(self, event, args),
            http_trace=None if self.is_bot else user_token_trace(),
        )
        self.gateway = gateway
        try:
            await gateway.login(self.meta.token)
        except discord.LoginFailure:
            await self.token_refused("the token was refused (401)")
            return
        except Exception as e:  # noqa: BLE001 - reported, retried by the runtime's reconnect
            log.warning("Discord login %s could not log in: %s", self.login.id, e)
            self.connector.bridge.report_state(
                self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, str(e)
            )
            return
        self._runner = asyncio.create_task(self._run(gateway), name=f"discord:{self.login.id}")

    async def _run(self, gateway: GatewayClient) -> None:
        try:
            await gateway.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except discord.PrivilegedIntentsRequired:
            self.connected = False
            self.connector.bridge.report_state(
                self.login.id,
                BridgeStateEvent.UNKNOWN_ERROR,
                "Discord refused the gateway intents: enable the Message Content and Server "
                "Members intents of the bot (Developer Portal > Bot > Privileged Gateway "
                "Intents)",
                error="discord-privileged-intents",
            )
        except discord.ConnectionClosed as e:
            if e.code == 4004:
                await self.token_refused("the token was refused (gateway close 4004)")
            else:
                log.warning("Discord login %s: gateway closed (%s)", self.login.id, e.code)
                self.connector.bridge.report_state(
                    self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, f"closed {e.code}"
                )
        except Exception as e:  # noqa: BLE001
            log.warning("Discord login %s: gateway failed: %s", self.login.id, e)
            self.connector.bridge.report_state(
                self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, str(e)
            )

    def gateway_ready(self) -> None:
        """READY (or RESUMED) came: the login is live."""
        if not self.connected and not self.dead:
            self.connected = True
            self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED)

    async def disconnect(self) -> None:
        self.connected = False
        gateway, self.gateway = self.gateway, None
        if gateway is not None:
            await gateway.close()
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def token_refused(self, why: str) -> None:
        """Discord refused the token: the login stops for good, its user is told once (also
        across restarts: the refusal is stored first)."""
        if self.dead:
            return
        self.dead = True
        self.connected = False
        log.warning("Discord login %s: %s", self.login.id, why)
        self.state.session = self.meta.session
        self.state.refused = why
        try:
            await self.connector.bridge.set_login_metadata(self.login.id, self.state)
        except LookupError:  # logged out meanwhile
            return
        self.connector.bridge.report_state(
            self.login.id,
            BridgeStateEvent.BAD_CREDENTIALS,
            f"Discord refused the {self.meta.kind} token ({why}): log in again with "
            f"`login discord {self.meta.kind}`",
            error="discord-bad-token",
        )

    async def save_state(self) -> None:
        await self.connector.bridge.set_login_metadata(self.login.id, self.state)

    # -- routing --------------------------------------------------------------------------------

    def is_in_portal(self, portal: PortalKey) -> bool:
        if self.dead:
            return False
        if portal.receiver:
            return portal.receiver == self.login.id
        channel = self.channel(int(portal.id)) if portal.id.isdigit() else None
        guild = getattr(channel, "guild", None)
        return guild is not None and (self.bridges_guild(guild.id) or not self.is_bot)

    def channel(self, channel_id: int) -> Any:
        """A channel (or thread) discord.py knows from the gateway, or None."""
        gateway = self.gateway
        return gateway.get_channel(channel_id) if gateway is not None else None

    # -- Matrix -> Discord ----------------------------------------------------------------------

    async def handle_matrix_message(self, msg: MatrixMessage) -> MessageResult:
        return await self.connector.outbound.send_message(self, msg)

    # -- info -------------------------------------------------------------------------------------

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        return await self.connector.guilds.chat_info(self, portal)

    async def get_user_info(self, remote_user_id: RemoteUserID) -> UserInfo | None:
        return await self.connector.users.user_info(self, remote_user_id)
