"""What a Slack login keeps (typed login metadata, stored with the login row)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SlackLoginMeta:
    """``kind`` "app": a workspace's app (bot token, app-level token for Socket Mode), which
    receives the workspace's events and relays Matrix users without a login. ``kind`` "user":
    a person's own token, with which the bridge speaks as them (true puppeting)."""

    VERSION = 1

    kind: str = "app"
    team_id: str = ""
    team_name: str = ""
    team_domain: str = ""
    user_id: str = ""  # the Slack user of the token (the bot user for an app)
    bot_id: str = ""
    bot_token: str = ""
    app_token: str = ""
    user_token: str = ""
    #: An app that receives events over HTTP (the Events API) instead of Socket Mode: the
    #: app's signing secret, which checks that a push comes from Slack.
    signing_secret: str = ""

    @property
    def token(self) -> str:
        return self.bot_token if self.kind == "app" else self.user_token
