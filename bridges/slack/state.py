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
    #: Made new by each completed ``login slack`` (the tokens it checked): a refusal recorded
    #: for an earlier session (:class:`SlackLoginState`) does not hold for this one.
    session: str = ""

    @property
    def token(self) -> str:
        return self.bot_token if self.kind == "app" else self.user_token


@dataclass
class SlackLoginState:
    """What happened to a login, kept with its row (typed login metadata) so that it outlives
    a restart: Slack refused a token (``refused_error``, e.g. "token_revoked", and which token
    ``refused_token``). A dead login is then not tried again at start (no ``auth.test``) and
    its user is not told again. ``session`` is the :attr:`SlackLoginMeta.session` the refusal
    was about: logging in again makes a new session, so a refusal of the old one no longer
    holds."""

    VERSION = 1

    session: str = ""
    refused_token: str = ""
    refused_error: str = ""

    def refused(self, meta: SlackLoginMeta) -> bool:
        return bool(self.refused_error) and self.session == meta.session
