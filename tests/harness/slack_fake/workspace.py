"""Setting up the fake's state: ids, message timestamps, workspaces, users, tokens,
conversations, files and custom emoji."""

from __future__ import annotations

import secrets
import time

from .models import (
    Conversation,
    FileObj,
    Team,
    Token,
    User,
)
from .wire import _PNG, _guess_mimetype


class WorkspaceSetup:
    """Ids and the ``add_*`` / ``*_token`` methods tests set a workspace up with."""

    # --- ids -------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}0{self._ids:08X}"

    def new_ts(self) -> str:
        """A message timestamp later than every earlier one (Slack's ids are ``sec.usec``)."""
        now = time.time()
        key = (int(now), int((now % 1) * 1_000_000))
        if key <= self._last_ts:
            sec, usec = self._last_ts
            key = (sec + 1, 0) if usec >= 999_999 else (sec, usec + 1)
        self._last_ts = key
        return f"{key[0]}.{key[1]:06d}"

    # --- setting up state ----------------------------------------------------------------------

    def add_team(self, name: str = "Fake Team", domain: str | None = None) -> Team:
        """A workspace with its app installed: a bot user, a bot token and the app token."""
        team = Team(self._id("T"), name, domain or name.lower().replace(" ", "-"))
        self.teams[team.id] = team
        bot = self.add_user(team.id, "bridgebot", real_name="Bridge Bot", is_bot=True)
        team.bot_user_id = bot.id
        team.bot_id = bot.bot_id or ""
        return team

    def add_user(
        self,
        team_id: str,
        name: str,
        *,
        real_name: str = "",
        display_name: str = "",
        is_bot: bool = False,
        avatar: bytes = b"",
        email: str = "",
    ) -> User:
        user = User(
            self._id("U"),
            team_id,
            name,
            real_name or name.title(),
            display_name,
            is_bot=is_bot,
            bot_id=self._id("B") if is_bot else None,
            updated=int(time.time()),
            email=email,
        )
        self._set_avatar(user, avatar)
        self.users[user.id] = user
        return user

    def bot_token(self, team_id: str) -> str:
        return self._token("xoxb", "bot", team_id, self.teams[team_id].bot_user_id)

    def user_token(self, user_id: str) -> str:
        return self._token("xoxp", "user", self.users[user_id].team_id, user_id)

    def app_token(self) -> str:
        return self._token("xapp", "app", "", "")

    def _token(self, prefix: str, kind: str, team_id: str, user_id: str) -> str:
        for token in self.tokens.values():
            if (token.kind, token.team_id, token.user_id) == (kind, team_id, user_id):
                if token.revoked is None:
                    return token.value
        value = f"{prefix}-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
        self.tokens[value] = Token(value, kind, team_id, user_id)
        return value

    def add_conversation(
        self,
        team_id: str,
        name: str = "",
        *,
        kind: str = "public",
        members: list[str] | None = None,
        topic: str = "",
        purpose: str = "",
        with_bot: bool = True,
    ) -> Conversation:
        """A channel (``public``/``private``), DM (``im``) or group DM (``mpim``). The bot user is
        a member unless ``with_bot=False``."""
        prefix = {"public": "C", "private": "C", "im": "D", "mpim": "C"}[kind]
        members = list(members or [])
        bot = self.teams[team_id].bot_user_id
        if with_bot and bot not in members:
            members.append(bot)
        conv = Conversation(
            self._id(prefix),
            team_id,
            kind,
            name,
            topic,
            purpose,
            members,
            creator=members[0] if members else "",
            created=int(time.time()),
        )
        if kind == "mpim" and not name:
            conv.name = "mpdm-" + "--".join(self.users[m].name for m in members) + "-1"
        self.conversations[conv.id] = conv
        self.messages[conv.id] = []
        return conv

    def add_file(
        self, team_id: str, user: str, name: str, data: bytes, mimetype: str = ""
    ) -> FileObj:
        f = FileObj(
            self._id("F"),
            team_id,
            user,
            name,
            name,
            mimetype or _guess_mimetype(name),
            data,
            len(data),
            int(time.time()),
        )
        self.files[f.id] = f
        return f

    def add_emoji(
        self, team_id: str, name: str, data: bytes = b"", *, alias_for: str | None = None
    ) -> str:
        if alias_for is not None:
            value = f"alias:{alias_for}"
        else:
            self.emoji_images[f"{team_id}/{name}"] = data or _PNG
            value = f"{self.url}/emoji/{team_id}/{name}.png"
        self.emoji.setdefault(team_id, {})[name] = value
        return value
