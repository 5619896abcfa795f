"""Reactions, both ways: unicode emoji by Slack name, and the workspace's custom emoji.

Slack -> Matrix: ``reaction_added`` / ``reaction_removed`` name the emoji (``+1``,
``+1::skin-tone-3``, ``partyparrot``). Standard names become their unicode; a name that is
none is looked up in the workspace's ``emoji.list`` (cached, asked again at most once a
minute when a name is missing), following ``alias:`` entries: an alias of a standard emoji is
that emoji, a custom image becomes a custom emoji reaction (the runtime uploads its image once
and reacts with its ``mxc://``, shortcode in ``com.beeper.reaction.shortcode``). An unknown
name is reacted as ``:name:`` text.

One Slack reaction reaches Matrix once (mautrix-slack #6): redeliveries are dropped by event
id, and the runtime keeps one reaction per (message, sender, key), so the same reaction
reported to two app logins of the workspace, or redelivered after a restart, is not reacted
twice. The bot's own reactions are dropped (only the bridge reacts as the app). The echo of
a reaction the bridge made with a personal token finds the runtime's record of it (the
runtime holds the portal's remote events while it sends, until it has recorded the
reaction), so it is not reacted again either.

Matrix -> Slack: ``reactions.add`` / ``reactions.remove`` as the Matrix user's personal login
(or the app, for its owner). The runtime does not relay reactions of Matrix users without a
login: Slack keeps one reaction per user and emoji, so the app reacting for everyone would
merge them into one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from bridgekit.contract.connector import ReactionHandler, SendRefused
from bridgekit.contract.events import (
    MatrixReaction,
    MatrixReactionRemove,
    RemoteMessageID,
    RemoteReaction,
    RemoteReactionRemove,
)
from bridgekit.contract.results import MessageResult

from .mrkdwn import emoji_name, emoji_unicode

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.reactions")

#: Seconds before ``emoji.list`` is asked again for a name it did not have.
EMOJI_REFRESH = 60.0
#: ``alias:`` links followed at most (a loop of aliases ends there).
MAX_ALIAS_HOPS = 5


class CustomEmojiTable:
    """A workspace's custom emoji (``emoji.list``): name -> image URL or ``alias:name``."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.fetched = float("-inf")
        self.lock = asyncio.Lock()  # one emoji.list at a time; the others wait for its answer

    def resolve(self, name: str) -> tuple[str, str | None]:
        """(canonical name, image URL) of a custom emoji, following aliases; the URL is None
        for an alias of a standard emoji (the name is then that emoji's) or an unknown name."""
        for _ in range(MAX_ALIAS_HOPS):
            value = self.names.get(name)
            if value is None:
                return name, None
            if not value.startswith("alias:"):
                return name, value
            name = value[len("alias:") :]
        return name, None


class Reactions:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        self.emoji: dict[str, CustomEmojiTable] = {}

    def register(self) -> None:
        self.connector.inbound.on("reaction_added", self.added)
        self.connector.inbound.on("reaction_removed", self.removed)

    # -- emoji ---------------------------------------------------------------------------------

    async def custom_table(self, client: SlackClient, name: str) -> CustomEmojiTable:
        """The workspace's table, (re)fetched when ``name`` is missing and it is old enough."""
        table = self.emoji.setdefault(client.team_id, CustomEmojiTable())
        if name in table.names:
            return table
        async with table.lock:
            if name in table.names or time.monotonic() - table.fetched < EMOJI_REFRESH:
                return table
            table.fetched = time.monotonic()
            try:
                data = await client.call("emoji.list")
            except Exception as e:  # noqa: BLE001 - the reaction still goes, as text
                log.info("emoji.list failed for %s: %s", client.team_id, e)
                return table
            emoji = data.get("emoji")
            if isinstance(emoji, dict):
                table.names = {str(k): str(v) for k, v in emoji.items() if isinstance(v, str)}
        return table

    async def matrix_key(self, client: SlackClient, name: str) -> dict[str, Any]:
        """The reaction's fields for a Slack emoji name: ``key`` and, for a custom emoji,
        ``emoji_id`` (team-qualified: names are per workspace), ``emoji_url``, ``emoji_name``."""
        char = emoji_unicode(name)
        if char is not None:
            return {"key": char}
        base, _, _tone = name.partition("::")
        table = await self.custom_table(client, base)
        canonical, url = table.resolve(base)
        if url is None:
            char = emoji_unicode(canonical)  # an alias of a standard emoji
            return {"key": char or f":{base}:"}
        if not url.startswith(("https://", "http://")):
            return {"key": f":{base}:"}
        return {
            "key": f":{base}:",
            "emoji_id": f"{client.team_id.lower()}-{canonical}",
            "emoji_url": url,
            "emoji_name": base,
        }

    # -- Slack -> Matrix -------------------------------------------------------------------------

    def _item(self, event: dict[str, Any]) -> tuple[str, str, str, str] | None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "message":
            return None  # files and file comments have no Matrix counterpart here
        channel, ts = str(item.get("channel") or ""), str(item.get("ts") or "")
        user, name = str(event.get("user") or ""), str(event.get("reaction") or "")
        if not (channel and ts and user and name):
            return None
        return channel, ts, user, name

    def _is_ours(self, client: SlackClient, user: str) -> bool:
        """Only the bridge reacts as the app."""
        return any(c.meta.user_id == user for c in self.connector.app_clients(client.team_id))

    async def added(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        item = self._item(event)
        if item is None or self._is_ours(client, item[2]):
            return
        channel, ts, user, name = item
        inbound = self.connector.inbound
        await inbound.queue(
            client,
            RemoteReaction(
                inbound.portal_of(client, channel, event),
                inbound.sender(client, user),
                _time(event),
                target_id=RemoteMessageID(ts),
                **await self.matrix_key(client, name),
            ),
        )

    async def removed(self, client: SlackClient, event: dict[str, Any], payload: Any) -> None:
        item = self._item(event)
        if item is None or self._is_ours(client, item[2]):
            return
        channel, ts, user, name = item
        inbound = self.connector.inbound
        fields = await self.matrix_key(client, name)
        await inbound.queue(
            client,
            RemoteReactionRemove(
                inbound.portal_of(client, channel, event),
                inbound.sender(client, user),
                _time(event),
                target_id=RemoteMessageID(ts),
                key=fields["key"],
                emoji_id=fields.get("emoji_id"),
            ),
        )

    # -- Matrix -> Slack -------------------------------------------------------------------------

    def slack_name(self, client: SlackClient, key: str, emoji_id: str | None) -> str:
        if emoji_id:
            team, _, name = emoji_id.partition("-")
            if team.upper() != client.team_id or not name:
                raise SendRefused("that emoji belongs to another Slack workspace", "m.unsupported")
            return name
        name = emoji_name(key)
        if name is None and key.startswith(":") and key.endswith(":") and len(key) > 2:
            name = key[1:-1]  # a ``:name:`` reaction, as unknown Slack emoji arrive
        if name is None:
            raise SendRefused("Slack reactions must be emoji", "m.unsupported")
        return name

    async def _call(
        self, client: SlackClient, method: str, msg: MatrixReaction | MatrixReactionRemove
    ) -> None:
        name = self.slack_name(client, msg.key, msg.emoji_id)
        channel = self.connector.outbound.channel_of(client, msg)
        await client.call(method, channel=channel, timestamp=str(msg.target_id), name=name)

    async def matrix_reaction(self, client: SlackClient, reaction: MatrixReaction) -> None:
        await self._call(client, "reactions.add", reaction)

    async def matrix_reaction_remove(
        self, client: SlackClient, removal: MatrixReactionRemove
    ) -> None:
        await self._call(client, "reactions.remove", removal)


def _time(event: dict[str, Any]) -> float | None:
    try:
        return float(event.get("event_ts") or 0) or None
    except (TypeError, ValueError):
        return None


class SlackReactions(ReactionHandler):
    """:class:`~.client.SlackClient`'s reactions (see :class:`Reactions`)."""

    connector: SlackConnector

    async def handle_matrix_reaction(self, reaction: MatrixReaction) -> MessageResult | None:
        await self.connector.reactions.matrix_reaction(self, reaction)  # type: ignore[arg-type]
        return None

    async def handle_matrix_reaction_remove(self, removal: MatrixReactionRemove) -> None:
        await self.connector.reactions.matrix_reaction_remove(self, removal)  # type: ignore[arg-type]
