"""Helpers that make end-to-end tests read like conversations."""

from __future__ import annotations

from typing import Any

from bridgekit.bridge import Bridge
from tests.harness.matrix_client import MatrixTestClient


class Conversation:
    """A Matrix user talking to the bridge bot in one room; ``say`` returns the bot's answer."""

    def __init__(self, client: MatrixTestClient, room_id: str, bot: str) -> None:
        self.client = client
        self.room_id = room_id
        self.bot = bot
        self.seen: set[str] = set()

    def _is_new_bot_notice(self, evt: dict[str, Any]) -> bool:
        return (
            evt.get("sender") == self.bot
            and evt.get("type") == "m.room.message"
            and evt.get("event_id") not in self.seen
        )

    async def next_notice(self, timeout: float = 15) -> str:
        evt = await self.client.wait_for_event(self.room_id, self._is_new_bot_notice, timeout)
        self.seen.add(evt["event_id"])
        return evt["content"]["body"]

    async def say(self, text: str, timeout: float = 15) -> str:
        # Mark everything already there as seen, so the answer is to *this* message.
        for evt in self.client.history(self.room_id):
            if self._is_new_bot_notice(evt):
                self.seen.add(evt["event_id"])
        await self.client.send_text(self.room_id, text)
        return await self.next_notice(timeout)


async def management_room(client: MatrixTestClient, bridge: Bridge) -> Conversation:
    """Open a DM with the bot; returns the conversation after the bot's welcome."""
    room_id = await client.create_room(invite=[bridge.bot_mxid], is_direct=True)
    conv = Conversation(client, room_id, bridge.bot_mxid)
    welcome = await conv.next_notice(timeout=20)
    assert "management room" in welcome
    return conv


async def login_fake(conv: Conversation, username: str, password: str = "pw") -> str:
    assert "username" in await conv.say("login fake")
    assert "password" in await conv.say(username)
    return await conv.say(password)
