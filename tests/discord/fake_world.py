"""A small Discord world on the fake (a guild, two people, a bot with a role) and discord.py
clients pointed at it that record what they get: shared by the tests of the fake."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from tests.harness.discord_fake import MANAGE_MESSAGES, MANAGE_WEBHOOKS, FakeDiscord


@dataclass
class World:
    fake: FakeDiscord
    bot: Any
    alice: Any
    bob: Any
    guild: Any
    general: Any
    clients: list[discord.Client] = field(default_factory=list)

    async def client(
        self,
        token: str | None = None,
        *,
        content: bool = True,
        members: bool = False,
        wait: bool = True,
        **kw: Any,
    ) -> Recorder:
        intents = discord.Intents.default()
        intents.message_content = content
        intents.members = members
        client = Recorder(
            intents=intents,
            guild_ready_timeout=0.2,
            chunk_guilds_at_startup=False,
            max_messages=None,
            **kw,
        )
        self.clients.append(client)
        await client.login(token or self.bot.token)
        client.task = asyncio.create_task(client.connect(reconnect=True))
        if wait:
            await asyncio.wait_for(client.wait_until_ready(), 30)
        return client


class Recorder(discord.Client):
    """A client that records every dispatch it gets (raw socket events too)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.got: list[tuple[str, Any]] = []
        self.types: list[str] = []  # every dispatch type, in order
        self.task: asyncio.Task[Any] | None = None
        self.resumed = 0

    async def on_message(self, message: discord.Message) -> None:
        self.got.append(("message", message))

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        self.got.append(("edit", payload))

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.got.append(("delete", payload))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.got.append(("reaction", payload))

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        self.got.append(("bulk_delete", payload))

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        self.got.append(("unreaction", payload))

    async def on_raw_typing(self, payload: discord.RawTypingEvent) -> None:
        self.got.append(("typing", payload))

    async def on_guild_channel_update(self, before: Any, after: Any) -> None:
        self.got.append(("channel_update", after))

    async def on_socket_event_type(self, event_type: str) -> None:
        self.types.append(event_type)

    async def on_resumed(self) -> None:
        self.resumed += 1

    def messages(self) -> list[discord.Message]:
        return [m for kind, m in self.got if kind == "message"]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord(heartbeat_interval_ms=2000) as fake:
        alice = fake.add_user("alice", global_name="Alice")
        bob = fake.add_user("bob")
        bot = fake.add_bot("bridgebot")
        guild = fake.add_guild("Acme", alice)
        fake.add_member(guild, bob)
        # a bot invited with permissions gets a role holding them
        role = fake.add_role(guild, "bridgebot", permissions=MANAGE_WEBHOOKS | MANAGE_MESSAGES)
        fake.add_member(guild, bot, roles=[role])
        general = fake.add_channel(guild, "general", topic="chat")
        w = World(fake, bot, alice, bob, guild, general)
        with fake.point_discord_py():
            try:
                yield w
            finally:
                for client in w.clients:
                    with contextlib.suppress(Exception):
                        await client.close()
                    task = getattr(client, "task", None)
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(BaseException):
                            await task
                # discord.py's keep-alive threads call into the loop: let them end before it closes
                for thread in threading.enumerate():
                    if thread.name.startswith("keep-alive-handler"):
                        await asyncio.to_thread(thread.join, 15)
