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
    ReactionHandler,
    RelaysOwnUser,
    RendersRelaySender,
    TypingHandler,
)
from bridgekit.contract.events import (
    ChatInfo,
    MatrixMessage,
    MatrixReaction,
    MatrixReactionRemove,
    MatrixTyping,
    PortalKey,
    RemoteUserID,
    UserInfo,
)
from bridgekit.contract.live_gate import LiveGate
from bridgekit.contract.results import MessageResult

from .api import point_discord_py, user_token_trace
from .catchup import DiscordBackfill
from .credentials import refusal_trace
from .deletes import DiscordDeletes
from .edits import DiscordEdits
from .gateway import GatewayClient, UserGatewayClient
from .intents import PRIVILEGED, intents_for, missing_notice, refused_notice
from .reconnect import ReconnectBreaker
from .state import BOT, DiscordLoginMeta, DiscordLoginState

if TYPE_CHECKING:
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord")

#: Close codes after which discord.py does not reconnect (client.py reports them itself).
FINAL_CLOSES = (4004, 4010, 4011, 4012, 4013, 4014)


class LoginStopped(Exception):
    """Raised from the IDENTIFY hook of a login that must not IDENTIFY again."""


class DiscordClient(
    NetworkClient,
    RendersRelaySender,
    ReactionHandler,
    TypingHandler,
    DiscordBackfill,
    DiscordEdits,
    DiscordDeletes,
):
    """A login; a personal one (``kind`` user) as it is, a bot as :class:`DiscordBotClient`."""

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
        #: Live events wait from each (re)connect until the catch-ups are queued (catchup.py).
        self.live_gate = LiveGate()
        #: The connector's own backoff around discord.py's reconnects (reconnect.py).
        self.breaker = ReconnectBreaker(connector.reconnect_policy, on_open=self._breaker_opened)
        #: Privileged intents the bot's application has not enabled (intents.py).
        self.missing_intents: list[str] = []

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
            # Refused before a restart: the user was told then; it shows, without a notice.
            self.connector.bridge.report_state(
                self.login.id,
                BridgeStateEvent.BAD_CREDENTIALS,
                self.refused_notice(self.state.refused),
                error="discord-bad-token",
                notify=False,
            )
            return
        self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTING)
        point_discord_py(self.connector.config)
        gateway_type = GatewayClient if self.is_bot else UserGatewayClient
        gateway = gateway_type(
            lambda event, args: self.connector.inbound.route(self, event, args),
            http_trace=refusal_trace(self, None if self.is_bot else user_token_trace()),
        )
        gateway.identify_gate = self._before_identify
        self.gateway = gateway
        self.live_gate.close()  # opened by catch_up_queued (catchup.py)
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
        if self.dead:  # a REST call of the login said 401
            return
        if self.is_bot:
            await self._check_intents(gateway)
        self._runner = asyncio.create_task(self._run(gateway), name=f"discord:{self.login.id}")

    async def _run(self, gateway: GatewayClient) -> None:
        try:
            await gateway.connect(reconnect=True)
        except asyncio.CancelledError:
            raise
        except LoginStopped:
            pass
        except discord.PrivilegedIntentsRequired:
            self.connected = False
            asked = [
                name for attr, (name, _) in PRIVILEGED.items() if getattr(gateway.intents, attr)
            ]
            self.connector.bridge.report_state(
                self.login.id,
                BridgeStateEvent.UNKNOWN_ERROR,
                refused_notice(asked),
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
            if self.dead:
                return
            log.warning("Discord login %s: gateway failed: %s", self.login.id, e)
            self.connector.bridge.report_state(
                self.login.id, BridgeStateEvent.TRANSIENT_DISCONNECT, str(e)
            )

    def gateway_ready(self) -> None:
        """READY (or RESUMED) came: the login is live (and the runtime catches up)."""
        gateway = self.gateway
        ws = getattr(gateway, "ws", None)
        if ws is None or ws.socket.closed:
            return  # the ready of a session that is gone already (discord.py delays it)
        self.breaker.up()
        if not self.connected and not self.dead:
            self.connected = True
            missing = missing_notice(self.missing_intents) if self.missing_intents else ""
            self.connector.bridge.report_state(self.login.id, BridgeStateEvent.CONNECTED, missing)

    def gateway_up(self) -> None:
        """A session began (READY parsed, or RESUMED): the breaker times how long it lasts."""
        self.breaker.up()

    def gateway_lost(self) -> None:
        """discord.py lost the gateway connection and is about to reconnect (or stop):
        live events wait for the catch-up that the next CONNECTED brings."""
        gateway = self.gateway
        code = gateway.close_code() if gateway is not None else None
        self.breaker.down(code)
        if self.dead or gateway is None or gateway.is_closed():
            return
        self.live_gate.close()
        if self.connected and code not in FINAL_CLOSES:
            self.connected = False
            self.connector.bridge.report_state(
                self.login.id,
                BridgeStateEvent.TRANSIENT_DISCONNECT,
                f"the gateway connection was lost (close {code}): reconnecting",
            )
        self.connected = False

    async def _before_identify(self, initial: bool) -> None:
        if self.dead:
            raise LoginStopped
        await self.breaker.before_identify(initial)
        if self.dead:
            raise LoginStopped

    def _breaker_opened(self, why: str) -> None:
        self.connected = False
        self.connector.bridge.report_state(
            self.login.id,
            BridgeStateEvent.TRANSIENT_DISCONNECT,
            why,
            error="discord-reconnect-storm",
        )

    async def _check_intents(self, gateway: GatewayClient) -> None:
        """Ask only for the privileged intents the application has enabled, and tell the
        admin about the others (a bot without Message Content gets empty messages)."""
        app = gateway.application
        intents, self.missing_intents = intents_for(app.flags if app is not None else None)
        gateway.use_intents(intents)
        if self.missing_intents:
            notice = missing_notice(self.missing_intents)
            log.warning("Discord login %s: %s", self.login.id, notice)
            name = self.login.remote_name or self.login.id
            await self.connector.bridge.notify_user(
                self.login.user_mxid, f"discord login {name}: {notice}"
            )

    def refused_notice(self, why: str) -> str:
        return (
            f"Discord refused the {self.meta.kind} token ({why}): log in again with "
            f"`login discord {self.meta.kind}`"
        )

    async def disconnect(self) -> None:
        self.connected = False
        await self.connector.typing.stop_login(self)
        self.live_gate.open()
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
        self.live_gate.open()
        log.warning("Discord login %s: %s", self.login.id, why)
        gateway = self.gateway
        if gateway is not None and not gateway.is_closed():
            await gateway.close()  # no more IDENTIFYs (nor RESUMEs) with a dead token
        self.state.session = self.meta.session
        self.state.refused = why
        try:
            await self.connector.bridge.set_login_metadata(self.login.id, self.state)
        except LookupError:  # logged out meanwhile
            return
        self.connector.bridge.report_state(
            self.login.id,
            BridgeStateEvent.BAD_CREDENTIALS,
            self.refused_notice(why),
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

    async def handle_matrix_reaction(self, reaction: MatrixReaction) -> MessageResult | None:
        return await self.connector.reactions.send(self, reaction)

    async def handle_matrix_reaction_remove(self, removal: MatrixReactionRemove) -> None:
        await self.connector.reactions.remove(self, removal)

    async def handle_matrix_typing(self, typing: MatrixTyping) -> None:
        await self.connector.typing.from_matrix(self, typing)

    # -- info -------------------------------------------------------------------------------------

    async def get_chat_info(self, portal: PortalKey) -> ChatInfo:
        return await self.connector.guilds.chat_info(self, portal)

    async def get_user_info(self, remote_user_id: RemoteUserID) -> UserInfo | None:
        return await self.connector.users.user_info(self, remote_user_id)


class DiscordBotClient(DiscordClient, RelaysOwnUser):
    """A bot login: its own Matrix user is relayed through the channel's webhook under their
    Matrix name (:class:`RelaysOwnUser`), not shown as the bot; a personal login is not one,
    so its user speaks as their own account."""
