"""``start-chat slack <who>``: open a DM through the person's own Slack login.

``<who>`` is a Slack user id (``U…``/``W…``, or ``<@U…>`` as Slack writes it), a ghost's
Matrix id, an email address (``users.lookupByEmail``) or a handle (``@bob`` or ``bob``: the
user's name or display name, from ``users.list``, bounded). The DM is opened with the
person's personal token (``conversations.open``), so it is theirs on Slack too; a person
with only an app login cannot start one (the bot's DMs are its own).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

from slack_sdk.errors import SlackApiError

from bridgekit.contract.capabilities import IdentifierResolver, ResolvedIdentifier
from bridgekit.contract.events import PortalKey

from .api import error_code
from .ids import is_slack_id, parse_user_rid, portal_key, user_rid
from .login import USER_FLOW
from .users import display_name

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.start_chat")

_MENTION_RE = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: ``users.list`` pages read looking for a handle (200 users a page).
HANDLE_PAGES = 50
#: What Slack answers for a user it does not know.
NOT_FOUND = frozenset({"user_not_found", "users_not_found"})


class SlackStartChat(IdentifierResolver):
    """The connector's :class:`IdentifierResolver` (a mixin of :class:`SlackConnector`)."""

    async def resolve_identifier(
        self, user_mxid: str, identifier: str
    ) -> ResolvedIdentifier | None:
        connector = cast("SlackConnector", self)
        logins = [
            c
            for c in connector.clients.values()
            if c.login.user_mxid == user_mxid and c.meta.kind == USER_FLOW and not c.dead
        ]
        if not logins:
            raise ValueError("starting a Slack DM needs your own Slack login (`login slack user`)")
        who = identifier.strip()
        if not who or len(who) > 254:
            raise ValueError("say who: a Slack user id, @handle or email address")
        for client in logins:
            try:
                user = await _find(connector, client, who)
            except SlackApiError as e:
                if error_code(e) in NOT_FOUND:
                    continue
                raise ConnectionError(error_code(e) or "Slack did not answer") from None
            if user is not None and not user.get("deleted"):
                uid = str(user["id"])
                connector.users.update(client.team_id, user)
                return ResolvedIdentifier(
                    client.login.id, user_rid(client.team_id, uid), display_name(user)
                )
        return None

    async def create_dm(self, resolved: ResolvedIdentifier) -> PortalKey:
        client = cast("SlackConnector", self).clients[resolved.login_id]
        parsed = parse_user_rid(resolved.user_id)
        assert parsed is not None
        try:
            data = await client.call("conversations.open", users=parsed[1])
        except SlackApiError as e:
            raise ConnectionError(error_code(e) or "Slack did not answer") from None
        channel = str((data.get("channel") or {}).get("id") or "")
        if not is_slack_id(channel):
            raise ConnectionError("Slack opened no DM")
        return portal_key(client.team_id, channel, client.login.id)


async def _find(connector: SlackConnector, client: SlackClient, who: str) -> dict[str, Any] | None:
    """The Slack user ``who`` names in ``client``'s workspace, or None."""
    mention = _MENTION_RE.match(who)
    if mention:
        who = mention.group(1)
    if who.startswith("@") and ":" in who:  # a ghost's Matrix id
        rid = connector.ghost_remote_id(who[1:].split(":", 1)[0])
        parsed = parse_user_rid(rid) if rid else None
        if parsed is None:
            raise ValueError("that Matrix user is not a Slack user")
        if parsed[0] != client.team_id:
            return None
        who = parsed[1]
    if is_slack_id(who) and who[0] in "UW":
        return await connector.users.get(client, who)
    if _EMAIL_RE.match(who):
        data = await client.call("users.lookupByEmail", email=who)
        found = data.get("user")
        return found if isinstance(found, dict) else None
    return await _by_handle(client, who.removeprefix("@").lower())


async def _by_handle(client: SlackClient, handle: str) -> dict[str, Any] | None:
    if not handle or any(c.isspace() for c in handle):
        raise ValueError("a handle is one word")
    cursor = ""
    for _ in range(HANDLE_PAGES):
        data = await client.call("users.list", limit=200, cursor=cursor)
        for user in data.get("members") or []:
            if not isinstance(user, dict) or user.get("deleted"):
                continue
            profile = user.get("profile") or {}
            names = (user.get("name"), profile.get("display_name"))
            if any(isinstance(n, str) and n.lower() == handle for n in names):
                return user
        cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            return None
    log.info("No user %r in the first %d pages of users.list", handle, HANDLE_PAGES)
    return None
