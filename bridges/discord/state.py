"""What a Discord login keeps (typed login metadata, stored with the login row)."""

from __future__ import annotations

from dataclasses import dataclass, field

BOT = "bot"
USER = "user"


@dataclass
class DiscordLoginMeta:
    """``kind`` "bot": a bot (the admin's), which receives the events of the guilds it is in
    and relays Matrix users without a login through webhooks. ``kind`` "user": a person's own
    account (a user token: against Discord's terms, documented), which speaks for its Matrix
    user (true puppeting)."""

    VERSION = 1

    kind: str = BOT
    token: str = ""
    user_id: str = ""  # the Discord user of the token (the bot user for a bot)
    user_name: str = ""
    application_id: str = ""
    #: Made new by each completed ``login discord``: a refusal recorded for an earlier
    #: session (:class:`DiscordLoginState`) does not hold for this one.
    session: str = ""


@dataclass
class DiscordLoginState:
    """What a login learns while it runs and must outlive a restart (typed login metadata):
    the guilds an admin bridged with ``discord bridge-guild`` (a bot's), and whether Discord
    refused its token (``refused``, for :attr:`DiscordLoginMeta.session` ``session``): a dead
    login is not tried again at start and its user is not told again, until they log in
    again."""

    VERSION = 1

    guilds: list[str] = field(default_factory=list)
    session: str = ""
    refused: str = ""

    def holds_for(self, meta: DiscordLoginMeta) -> bool:
        return bool(self.refused) and self.session == meta.session
