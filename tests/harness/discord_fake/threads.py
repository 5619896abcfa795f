"""Threads and forum posts as Discord makes them: a thread started from a message has that
message's id, a forum post's thread has its starter message's id, a thread started without a
message leaves a type 18 ("thread created") message in its parent. THREAD_CREATE to whoever
sees the parent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import (
    ANNOUNCEMENT_THREAD,
    GUILD_ANNOUNCEMENT,
    GUILD_FORUM,
    PUBLIC_THREAD,
    Channel,
    Message,
)
from .workspace import cid

if TYPE_CHECKING:
    from .server import FakeDiscord


class ThreadActions:
    """Thread creation (``self`` is the ``FakeDiscord``)."""

    def open_thread(
        self: FakeDiscord,
        parent: Channel,
        name: str,
        owner_id: str,
        *,
        starter: Message | None = None,
        thread_id: str | None = None,
        type: int | None = None,
    ) -> Channel:
        """A thread in ``parent`` (id = the starter message's id when there is one) and its
        THREAD_CREATE; a thread without a starter message leaves a type 18 message in the parent."""
        kind = type or (ANNOUNCEMENT_THREAD if parent.type == GUILD_ANNOUNCEMENT else PUBLIC_THREAD)
        thread = Channel(
            id=thread_id or (starter.id if starter else self.ids.next()),
            type=kind,
            guild_id=parent.guild_id,
            name=name,
            parent_id=parent.id,
            owner_id=owner_id,
        )
        self.channels[thread.id] = thread
        self.message_store[thread.id] = []
        if parent.guild_id:
            self.guilds[parent.guild_id].channels.append(thread.id)
        if starter is not None:
            starter.thread_id = thread.id
        self.dispatch_channel(
            thread, "THREAD_CREATE", self.channel_json(thread) | {"newly_created": True}
        )
        if starter is None and parent.type != GUILD_FORUM:
            system = self.new_message(parent, owner_id, name, type=18)
            system.reference = {"channel_id": thread.id, "guild_id": parent.guild_id}
            self.dispatch_message("MESSAGE_CREATE", system)
        return thread

    async def create_thread(
        self: FakeDiscord, channel: Any, starter_message_id: Any, name: str, author: Any
    ) -> Channel:
        parent = self._channel(channel)
        starter = (
            self._message(parent, starter_message_id) if starter_message_id is not None else None
        )
        return self.open_thread(parent, name, cid(author), starter=starter)

    async def create_forum_post(
        self: FakeDiscord,
        forum: Any,
        author: Any,
        title: str,
        content: str,
        *,
        attachments: list[tuple[str, bytes, str]] | None = None,
    ) -> Channel:
        """A forum post: a thread whose id is its starter message's id (THREAD_CREATE, then the
        starter's MESSAGE_CREATE in the thread)."""
        parent = self._channel(forum)
        thread_id = self.ids.next()
        thread = self.open_thread(parent, title, cid(author), thread_id=thread_id)
        msg = self.new_message(thread, cid(author), content, files=attachments, msg_id=thread_id)
        await self.publish_create(msg)
        return thread
