"""``login slack``: a workspace's app (bot + app-level token) or a person's own token.

Each token is asked in its own step (a secret field: the management room redacts the
message) and checked with Slack before the next question, so a mistyped token is said at
once. ``auth.test`` names the workspace and the Slack user; the app-level token is checked by
``apps.connections.open`` (the Socket Mode URL it returns is not used). An app that sends its
events over HTTP instead (the Events API, when the bridge listens for it) answers ``-`` for the
app-level token and then gives its signing secret (:mod:`.events_http`).
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bridgekit.contract.connector import LoginField, LoginInfo, LoginProcess, LoginStep

from .api import error_code, web_client
from .ids import user_rid
from .state import SlackLoginMeta

if TYPE_CHECKING:
    from .connector import SlackConnector

SIGNING_SECRET_RE = re.compile(r"^[0-9a-fA-F]{16,128}$")

APP_FLOW = "app"
USER_FLOW = "user"


class SlackLogin(LoginProcess):
    """One login in progress: ``flow`` is :data:`APP_FLOW` or :data:`USER_FLOW`."""

    def __init__(self, connector: SlackConnector, user_mxid: str, flow: str) -> None:
        self.connector = connector
        self.user_mxid = user_mxid
        self.flow = flow
        self.meta = SlackLoginMeta(kind=flow)
        self.user_name = ""  # as auth.test names the token's user, for the login's name

    async def start(self) -> LoginStep:
        if self.flow == APP_FLOW:
            return LoginStep(
                instructions=(
                    "Send the workspace app's bot token (xoxb-...), from the app's "
                    "OAuth & Permissions page."
                ),
                fields=[LoginField("bot_token", "bot token", "xoxb-...", secret=True)],
            )
        return LoginStep(
            instructions=(
                "Send your own Slack user token (xoxp-...), issued by the workspace's app."
            ),
            fields=[LoginField("user_token", "user token", "xoxp-...", secret=True)],
        )

    async def submit(self, values: dict[str, str]) -> LoginStep:
        if "bot_token" in values:
            return await self._bot_token(values["bot_token"].strip())
        if "app_token" in values:
            return await self._app_token(values["app_token"].strip())
        if "signing_secret" in values:
            return self._signing_secret(values["signing_secret"].strip())
        if "user_token" in values:
            return await self._user_token(values["user_token"].strip())
        raise ValueError("unexpected answer")

    async def _auth(self, token: str) -> dict:
        try:
            resp = await web_client(self.connector.config, token).auth_test()
        except SlackApiError as e:
            raise ValueError(f"Slack refused the token ({error_code(e) or 'error'})") from None
        return dict(resp.data) if isinstance(resp.data, dict) else {}

    async def _bot_token(self, token: str) -> LoginStep:
        if not token.startswith("xoxb-"):
            raise ValueError("a bot token starts with xoxb-")
        data = await self._auth(token)
        if not data.get("bot_id"):
            raise ValueError("that token is not a bot token")
        self._fill(data)
        self.meta.bot_token = token
        self.meta.bot_id = str(data.get("bot_id") or "")
        http = (
            " Or `-` to receive events over HTTP (the Events API) instead."
            if (self.connector.events_api.enabled)
            else ""
        )
        return LoginStep(
            instructions=(
                "Now the app-level token (xapp-..., Basic Information > App-Level Tokens, "
                f"with the connections:write scope), for Socket Mode.{http}"
            ),
            fields=[LoginField("app_token", "app-level token", "xapp-...", secret=True)],
        )

    async def _app_token(self, token: str) -> LoginStep:
        if token == "-":
            return self._ask_signing_secret()
        if not token.startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp-")
        try:
            await web_client(self.connector.config, token).apps_connections_open(app_token=token)
        except SlackApiError as e:
            raise ValueError(f"Slack refused the app-level token ({error_code(e)})") from None
        self.meta.app_token = token
        return LoginStep(complete=self._info())

    def _ask_signing_secret(self) -> LoginStep:
        listener = self.connector.events_api
        if not listener.enabled:
            raise ValueError(
                "this bridge does not listen for the Events API (networks.slack.events_api "
                "is off): give the app-level token, for Socket Mode"
            )
        return LoginStep(
            instructions=(
                "Then the app's signing secret (Basic Information > App Credentials). Once "
                "logged in, set the app's Request URL (Event Subscriptions) to this bridge's "
                f"public address of {listener.path}."
            ),
            fields=[LoginField("signing_secret", "signing secret", "32 hex digits", secret=True)],
        )

    def _signing_secret(self, secret: str) -> LoginStep:
        if not SIGNING_SECRET_RE.match(secret):
            raise ValueError("a signing secret is 32 hex digits (the app's Basic Information)")
        self.meta.signing_secret = secret
        return LoginStep(complete=self._info())

    async def _user_token(self, token: str) -> LoginStep:
        if not token.startswith("xoxp-"):
            raise ValueError("a user token starts with xoxp-")
        data = await self._auth(token)
        if data.get("bot_id"):
            raise ValueError("that is a bot token: use `login slack app` for a workspace's app")
        self._fill(data)
        self.meta.user_token = token
        return LoginStep(complete=self._info())

    def _fill(self, data: dict) -> None:
        self.meta.team_id = str(data.get("team_id") or "")
        self.meta.team_name = str(data.get("team") or self.meta.team_id)
        self.meta.user_id = str(data.get("user_id") or "")
        self.user_name = str(data.get("user") or "")
        url = str(data.get("url") or "")
        self.meta.team_domain = url.split("//", 1)[-1].split(".", 1)[0] if url else ""
        if not self.meta.team_id or not self.meta.user_id:
            raise ValueError("Slack did not say which workspace and user the token is for")

    def _info(self) -> LoginInfo:
        meta = self.meta
        remote = user_rid(meta.team_id, meta.user_id)
        existing = self.connector.find_login(self.user_mxid, remote, meta.kind)
        meta.session = secrets.token_hex(8)  # a refusal of an earlier login no longer holds
        who = "app" if meta.kind == APP_FLOW else "user"
        return LoginInfo(
            # Two Matrix users may log in the same app (or token): each login is their own.
            id=existing or f"slack-{meta.kind}-{remote}-{secrets.token_hex(4)}",
            user_mxid=self.user_mxid,
            network=self.connector.name,
            remote_id=remote,
            remote_name=f"{meta.team_name} ({who} {self.user_name or meta.user_id})",
            metadata=self.connector.meta_to_dict(meta),
        )
