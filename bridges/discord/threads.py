"""Discord threads and forum posts as ``m.thread``s of their parent channel's room.

A thread's root on Matrix is its starter message: for a thread started from a message and for
a forum post the thread's id is that message's id, so a message in the thread names the
thread's id as its ``thread_root`` (:mod:`.inbound`). A forum post's starter shows the post's
title as its first line, in bold. A thread started without a message (a private thread, a
public one made from the thread button) has no message to root at: the bridge posts a notice
"started a thread" with the thread's id as its remote id, which is then the root.

Matrix -> Discord: a message in an ``m.thread`` whose root is a Discord thread's starter goes
into that thread; a Matrix thread on a message that has no Discord thread yet makes one from
that message (named from its text) and posts in it.
"""

from __future__ import annotations

import html
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    RemoteMessage,
    RemoteMessageID,
)

from .ids import portal_key, user_rid

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.threads")

#: Discord's "A thread has already been created for this message".
THREAD_EXISTS = 160004
#: Discord's "Unknown Message" / "Unknown Channel".
UNKNOWN_MESSAGE = 10008
#: Longest thread name Discord takes.
MAX_NAME = 100
#: Channels whose threads are posts (their starter is the post itself, titled).
POST_PARENTS = (discord.ChannelType.forum, discord.ChannelType.media)
#: Threads whose last told name and state are remembered (see ``on_thread_update``).
TOLD_THREADS = 10_000


def thread_name(text: str) -> str:
    """A thread's name from its root message's text: the first non-empty line, cut."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line[: MAX_NAME - 1] + "…" if len(line) > MAX_NAME else line
    return "Thread"


def _parent_type(thread: discord.Thread) -> Any:
    parent = thread.parent
    return getattr(parent, "type", None)


class Threads:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self._told: OrderedDict[int, tuple[str, bool]] = OrderedDict()
        inbound = connector.inbound
        inbound.register("thread_create", self.on_thread_create, lambda a: a[0].parent_id)
        inbound.register("thread_update", self.on_thread_update, lambda a: a[1].parent_id)
        inbound.register("thread_join", self.on_thread_join, lambda a: a[0].parent_id)
        inbound.register("raw_thread_delete", self.on_thread_delete, lambda a: a[0].parent_id)

    # -- Discord -> Matrix ------------------------------------------------------------------

    def decorate(self, message: discord.Message, content: MessageContent) -> None:
        """A forum post's starter shows the post's title as its first line, in bold."""
        thread = message.channel
        if not isinstance(thread, discord.Thread) or message.id != thread.id:
            return
        if _parent_type(thread) not in POST_PARENTS or not thread.name:
            return
        title = thread.name
        body_html = content.html or html.escape(content.body).replace("\n", "<br>")
        content.html = f"<strong>{html.escape(title)}</strong><br>{body_html}"
        content.body = f"{title}\n{content.body}" if content.body else title

    def _bridged(self, client: DiscordClient, thread: discord.Thread) -> bool:
        """A thread of a guild this login bridges (a personal login leaves guilds to bots)."""
        return client.bridges_guild(thread.guild.id if thread.guild else None)

    async def on_thread_create(self, client: DiscordClient, thread: discord.Thread) -> None:
        if self._bridged(client, thread):
            await self._root(client, thread)

    async def ensure_root(self, client: DiscordClient, message: discord.Message) -> None:
        """Before a thread's message: its root, if the thread's creation was not seen (made
        while the bridge was away, or before its guild was bridged)."""
        thread = message.channel
        if isinstance(thread, discord.Thread) and message.id != thread.id:
            await self._root(client, thread)

    async def _root(self, client: DiscordClient, thread: discord.Thread) -> None:
        """A thread without a starter message gets a root on Matrix: a notice from its
        owner (a thread started from a message, and a forum post, are rooted at their
        starter). Once per thread and process; the runtime drops a root bridged already
        (its remote id is known)."""
        if _parent_type(thread) in POST_PARENTS:
            return
        if not self.connector.first_sight(f"thread:{thread.id}"):
            return
        gateway = client.gateway
        if gateway is None or thread.parent_id is None:
            return
        try:
            await gateway.http.get_message(thread.parent_id, thread.id)
            return  # started from that message: it is the root
        except discord.NotFound:
            pass
        except discord.HTTPException as e:
            log.warning("Thread %s: its starter could not be looked up: %s", thread.id, e)
            return
        owner = thread.owner_id
        name = thread.name or "a thread"
        event = RemoteMessage(
            portal=portal_key(thread.parent_id),
            sender=EventSender(remote_id=user_rid(owner)) if owner else None,
            timestamp=discord.utils.snowflake_time(thread.id).timestamp(),
            id=RemoteMessageID(str(thread.id)),
            content=MessageContent(
                body=f"started the thread “{name}”",
                html=f"started the thread <strong>{html.escape(name)}</strong>",
                msgtype="m.notice",
            ),
        )
        await self.connector.bridge.queue_remote_event(client.login.id, event)

    async def on_thread_update(
        self, client: DiscordClient, before: discord.Thread, after: discord.Thread
    ) -> None:
        """A thread renamed, archived or reopened: a notice in its ``m.thread``."""
        if self._bridged(client, after):
            await self._tell(client, after, (before.name, before.archived))

    async def on_thread_join(self, client: DiscordClient, thread: discord.Thread) -> None:
        """An update of a thread discord.py no longer holds (archived threads leave its
        cache) comes as a "join": told if the bridge knows what the thread was."""
        if self._bridged(client, thread) and thread.id in self._told:
            await self._tell(client, thread, self._told[thread.id])

    async def on_thread_delete(
        self, client: DiscordClient, payload: discord.RawThreadDeleteEvent
    ) -> None:
        """A deleted thread: a notice in its ``m.thread`` (a Matrix reply there later makes
        a new thread from the root, if that message is still there)."""
        if not client.bridges_guild(payload.guild_id):
            return
        if not self.connector.first_sight(f"thread-deleted:{payload.thread_id}"):
            return
        self._told.pop(payload.thread_id, None)
        await self._notice(client, payload.parent_id, payload.thread_id, ["The thread was deleted"])

    async def _tell(
        self, client: DiscordClient, thread: discord.Thread, before: tuple[str, bool]
    ) -> None:
        if thread.parent_id is None:
            return
        # What was last told (several bots see the same update: told once; and a name
        # given again later is told again).
        told = self._told.get(thread.id, before)
        self._told[thread.id] = (thread.name, thread.archived)
        self._told.move_to_end(thread.id)
        if len(self._told) > TOLD_THREADS:
            self._told.popitem(last=False)
        changes = []
        if thread.name != told[0]:
            changes.append(f"renamed the thread to “{thread.name}”")
        if thread.archived != told[1]:
            changes.append("The thread was " + ("archived" if thread.archived else "reopened"))
        await self._notice(client, thread.parent_id, thread.id, changes)

    async def _notice(
        self, client: DiscordClient, parent_id: int, thread_id: int, texts: list[str]
    ) -> None:
        """Notices from the bridge in a thread's ``m.thread``."""
        portal = portal_key(parent_id)
        if texts and not await self.connector.bridge.has_room(portal):
            return
        for n, text in enumerate(texts):
            content = MessageContent(body=text, msgtype="m.notice")
            content.thread_root = RemoteMessageID(str(thread_id))
            event = RemoteMessage(
                portal=portal,
                id=RemoteMessageID(f"{thread_id}:{time.time_ns() // 1000}:{n}"),
                content=content,
            )
            await self.connector.bridge.queue_remote_event(client.login.id, event)

    # -- Matrix -> Discord ------------------------------------------------------------------

    async def target(self, client: DiscordClient, channel_id: int, root: str) -> int | None:
        """The Discord thread a Matrix thread rooted at Discord message ``root`` goes to: the
        thread of that id, else a new one made from the root message. None: the root is
        no Discord message (the message then goes to the channel)."""
        if not root.isdigit():
            return None
        thread_id = int(root)
        gateway = client.gateway
        assert gateway is not None
        known = client.channel(thread_id)
        if isinstance(known, discord.Thread):
            return thread_id
        try:
            fetched = await gateway.fetch_channel(thread_id)
        except (discord.NotFound, discord.Forbidden):
            fetched = None
        if isinstance(fetched, discord.Thread):
            return thread_id
        try:
            root_msg = await gateway.http.get_message(channel_id, thread_id)
        except discord.NotFound:
            log.info("Matrix thread root %s is no message of %s: sent unthreaded", root, channel_id)
            return None
        name = thread_name(str(root_msg.get("content") or ""))
        try:
            data = await gateway.http.start_thread_with_message(
                channel_id, thread_id, name=name, auto_archive_duration=1440
            )
        except discord.Forbidden as e:
            log.warning(
                "No thread may be made on %s in %s (%s): sent unthreaded", root, channel_id, e
            )
            return None
        except discord.HTTPException as e:
            if e.code == THREAD_EXISTS:
                return thread_id
            raise
        return int(data["id"])

    def is_forum(self, client: DiscordClient, channel_id: int) -> bool:
        """Whether a channel takes posts (threads), not messages: a forum or media channel."""
        return getattr(client.channel(channel_id), "type", None) in POST_PARENTS

    async def new_post(self, channel: Any, **send: Any) -> discord.Message:
        """A Matrix message outside any thread of a forum room is a new post on Discord,
        titled from its text (sent as the login's own account)."""
        name = thread_name(str(send.get("content") or ""))
        made = await channel.create_thread(name=name, **send)
        return made.message
