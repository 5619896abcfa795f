"""``login discord``: a bot (the admin's) or a person's own account.

The token is asked in a secret step (the management room redacts the message) and checked
with Discord at once (``GET /users/@me``, and the bot's application), so a mistyped token is
said before anything is stored. The login is named after the account.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.connector import LoginField, LoginInfo, LoginProcess, LoginStep

from .api import checked_identity
from .state import BOT, USER, DiscordLoginMeta

if TYPE_CHECKING:
    from .connector import DiscordConnector

BOT_FLOW = BOT
USER_FLOW = USER


class DiscordLogin(LoginProcess):
    """One login in progress: ``flow`` is :data:`BOT_FLOW` or :data:`USER_FLOW`."""

    def __init__(self, connector: DiscordConnector, user_mxid: str, flow: str) -> None:
        self.connector = connector
        self.user_mxid = user_mxid
        self.flow = flow
        self.meta = DiscordLoginMeta(kind=flow)

    async def start(self) -> LoginStep:
        if self.flow == BOT_FLOW:
            return LoginStep(
                instructions=(
                    "Send the bot's token (Discord Developer Portal > your application > "
                    "Bot > Reset Token). Then invite the bot to your server and run "
                    "`discord bridge-guild <server id>`."
                ),
                fields=[LoginField("token", "bot token", "token", secret=True)],
            )
        return LoginStep(
            instructions=(
                "Send your own Discord token. Using a user token with a bridge is against "
                "Discord's terms of service and may get the account banned; the bot login is "
                "the supported way."
            ),
            fields=[LoginField("token", "user token", "token", secret=True)],
        )

    async def submit(self, values: dict[str, str]) -> LoginStep:
        token = values.get("token", "").strip()
        if not token:
            raise ValueError("send the token")
        if token.lower().startswith("bot "):
            token = token[4:].strip()
        try:
            me, app = await checked_identity(self.connector.config, token, self.flow)
        except discord.LoginFailure:
            raise ValueError("Discord refused the token") from None
        except discord.HTTPException as e:
            raise ValueError(f"Discord answered {e.status}: try again") from None
        if self.flow == BOT_FLOW and not me.get("bot"):
            raise ValueError("that is not a bot token: use `login discord user` for your own")
        if self.flow == USER_FLOW and me.get("bot"):
            raise ValueError("that is a bot token: use `login discord bot`")
        self.meta.token = token
        self.meta.user_id = str(me.get("id") or "")
        self.meta.user_name = str(me.get("global_name") or me.get("username") or "")
        self.meta.application_id = str((app or {}).get("id") or "")
        if not self.meta.user_id:
            raise ValueError("Discord did not say whose token it is")
        return LoginStep(complete=self._info())

    def _info(self) -> LoginInfo:
        meta = self.meta
        existing = self.connector.find_login(self.user_mxid, meta.user_id, meta.kind)
        meta.session = secrets.token_hex(8)  # a refusal of an earlier login no longer holds
        return LoginInfo(
            # Two Matrix users may log in the same bot: each login is their own.
            id=existing or f"discord-{meta.kind}-{meta.user_id}-{secrets.token_hex(2)}",
            user_mxid=self.user_mxid,
            network=self.connector.name,
            remote_id=meta.user_id,
            remote_name=f"{meta.user_name or meta.user_id} ({meta.kind})",
            metadata=self.connector.meta_to_dict(meta),
        )


def describe(me: dict[str, Any]) -> str:
    return str(me.get("global_name") or me.get("username") or me.get("id") or "?")
