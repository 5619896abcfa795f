"""Replies both ways.

Discord -> Matrix: a message's ``message_reference`` becomes an ``m.in_reply_to`` of the
replied message's event; when that message was never bridged (older than the portal, or
from a guild the bridge did not see), the reply quotes it instead (``> name: text``, from
the gateway's ``referenced_message`` or fetched), so the answer keeps its context.

Matrix -> Discord: a message sent as a Discord account (a personal login, or the bot where
webhooks are not allowed) replies with a ``message_reference``. Webhooks cannot reply: a
relayed reply starts with a quote line of the replied message and a jump link
(``> **name**: text`` as mautrix-discord does).
"""

from __future__ import annotations

import html
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import escape_markdown

from bridgekit.contract.events import MessageContent, PortalKey

from .names import InboundNames, matrix_user_of

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.replies")

#: Characters of the replied message a quote shows.
QUOTE_LENGTH = 100
_EVERYONE_RE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
_MENTION_RE = re.compile(r"<(@[!&]?|#)([0-9]{1,20})>")


def excerpt(text: str, limit: int = QUOTE_LENGTH) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    line = next((s for s in text.splitlines() if s.strip()), "").strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


class Replies:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    # -- Discord -> Matrix --------------------------------------------------------------------

    async def referenced(
        self, client: DiscordClient, message: discord.Message
    ) -> discord.Message | None:
        """The message ``message`` replies to: as the gateway gave it, else fetched."""
        ref = message.reference
        if ref is None or ref.message_id is None:
            return None
        if isinstance(ref.resolved, discord.Message):
            return ref.resolved
        gateway = client.gateway
        if gateway is None:
            return None
        try:
            channel = gateway.get_channel(ref.channel_id) or await gateway.fetch_channel(
                ref.channel_id
            )
            return await channel.fetch_message(ref.message_id)  # type: ignore[union-attr]
        except (discord.HTTPException, AttributeError) as e:
            log.debug("Could not fetch the replied message %s: %s", ref.message_id, e)
            return None

    async def quote_unbridged(
        self,
        client: DiscordClient,
        message: discord.Message,
        portal: PortalKey,
        content: MessageContent,
    ) -> None:
        """Quote the message ``message`` replies to at the top of ``content`` when it has
        no Matrix event to reply to."""
        ref_id = content.reply_to
        if ref_id is None:
            return
        if self.connector.was_seen(f"m:{ref_id}"):
            return  # bridged, or on its way in this portal's queue
        if await self.connector.bridge.find_message(portal, ref_id) is not None:
            return
        replied = await self.referenced(client, message)
        if replied is None:
            body_quote = "> (a message not bridged)"
            html_quote = "<blockquote>(a message not bridged)</blockquote>"
        else:
            author = replied.author
            name = author.display_name
            mxid = matrix_user_of(self.connector, author.id)
            if mxid is None and replied.webhook_id is None:
                mxid = self.connector.bridge.ghost_mxid(str(author.id))  # type: ignore[arg-type]
            names = InboundNames(self.connector, client, replied)
            text = excerpt(_MENTION_RE.sub(lambda m: _mention_name(names, m), replied.content))
            text = text or "(no text)"
            body_quote = f"> {name}: {text}"
            who = html.escape(name)
            if mxid is not None:
                who = f'<a href="https://matrix.to/#/{html.escape(mxid)}">{who}</a>'
            html_quote = f"<blockquote>{who}: {html.escape(text)}</blockquote>"
        said = content.html or html.escape(content.body).replace("\n", "<br>")
        content.body = f"{body_quote}\n\n{content.body}"
        content.html = f"{html_quote}{said}"

    # -- Matrix -> Discord --------------------------------------------------------------------

    async def quote_line(self, client: DiscordClient, channel_id: int, reply_to: str) -> str | None:
        """The quote line a webhook message starts with to show what it answers."""
        gateway = client.gateway
        if gateway is None or not reply_to.isdigit():
            return None
        channel: Any = gateway.get_channel(channel_id)
        guild_id = getattr(getattr(channel, "guild", None), "id", None) or "@me"
        link = f"https://discord.com/channels/{guild_id}/{channel_id}/{reply_to}"
        try:
            if channel is None:
                channel = await gateway.fetch_channel(channel_id)
            replied = await channel.fetch_message(int(reply_to))
        except (discord.HTTPException, AttributeError) as e:
            log.debug("Could not fetch the replied message %s: %s", reply_to, e)
            return f"> ↪ [a message]({link})"
        name = escape_markdown(replied.author.display_name)
        names = InboundNames(self.connector, client, replied)
        text = excerpt(_MENTION_RE.sub(lambda m: _mention_name(names, m), replied.content))
        # the quote must ping no one: no mention syntax and no @everyone survive in it
        text = _EVERYONE_RE.sub("@\u200b", escape_markdown(text).replace("<", "<\u200b"))
        return f"> **{name}**: {text} [↪]({link})"


def _mention_name(names: InboundNames, match: re.Match[str]) -> str:
    sigil, ident = match.group(1), match.group(2)
    if sigil == "#":
        channel = names.channel(ident)
        return f"#{channel.name}" if channel else "#channel"
    if sigil == "@&":
        return f"@{names.role(ident) or 'role'}"
    user = names.user(ident)
    return f"@{user.name if user else ident}"
