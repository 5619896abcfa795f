"""The parties of bench/discord.py: the fake Discord (in this process) with a Discord user who
posts and reads like ``irc_sides.RawIrc`` does, the bot login stored for the bridge (with its
guild bridged), and the portal rooms the Matrix user joins."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.harness is not an installed package
sys.path.insert(0, str(REPO / "bench"))

from bridge_state import join_invites, store_login  # noqa: E402
from irc_sides import MARKER_RE, now  # noqa: E402

from tests.harness.discord_fake import FakeDiscord  # noqa: E402


class BenchDiscord(FakeDiscord):
    """The fake Discord, telling the Discord user of every webhook message as it stores it
    (the moment the bridge's request was read: the fake's side of "delivered")."""

    bob: DiscordUser | None = None

    async def _execute_webhook(self, call: Any) -> Any:
        result = await super()._execute_webhook(call)
        if self.bob is not None:
            self.bob.read(str((call.body or {}).get("content") or ""))
        return result

    def prune(self) -> None:
        """Forget recorded requests and stored messages between phases (a long run adds tens
        of thousands, and the fake shares this process with the Matrix client)."""
        self.requests.clear()
        for messages in self.message_store.values():
            messages.clear()


class DiscordUser:
    """A Discord user in the benchmark's channel, shaped like ``irc_sides.RawIrc`` so that
    ``irc_phases``' phases drive it: ``send`` posts a message (in order: each post is a task
    started in turn), ``read`` records the markers of what the bridge posted."""

    def __init__(self, fake: BenchDiscord, user: Any, channel: Any) -> None:
        self.fake = fake
        self.user = user
        self.channel = channel
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.expect: dict[int, asyncio.Future[float]] = {}
        self.transport = None  # irc.py closes the IRC user's transport; nothing to close here
        self._tail: asyncio.Future[Any] | None = None
        fake.bob = self

    def send(self, _command: str, _target: str, text: str, channel: Any = None) -> None:
        previous = self._tail

        async def post() -> None:
            if previous is not None:
                await previous  # one after the other, as one Discord client posts
            await self.fake.send_message(channel or self.channel, self.user, text)

        self._tail = asyncio.ensure_future(post())

    def read(self, text: str) -> None:
        stamp = now()
        for m in MARKER_RE.finditer(text):
            if m.group(1) != "M":
                continue
            seq = int(m.group(2))
            self.order.append(seq)
            self.arrivals.setdefault(seq, stamp)
            fut = self.expect.pop(seq, None)
            if fut is not None and not fut.done():
                fut.set_result(stamp)


async def store_bot_login(db_url: str, bot: Any, guild: Any, mxid: str) -> str:
    """The bot login of ``mxid`` with ``guild`` bridged, stored the way ``login discord bot``
    and ``discord bridge-guild`` store them (the bridge loads it at start). Returns its id."""
    from bridgekit.contract.connector import LoginInfo
    from bridges.discord.state import DiscordLoginMeta, DiscordLoginState

    meta = DiscordLoginMeta(
        kind="bot", token=bot.token, user_id=bot.id, user_name=bot.username, session="bench"
    )
    login = LoginInfo(
        id=f"discord-bot-{bot.id}",
        user_mxid=mxid,
        network="discord",
        remote_id=bot.id,
        remote_name=f"{bot.username} (bot)",
        metadata=dataclasses.asdict(meta),
    )
    state = DiscordLoginState(guilds=[guild.id])

    async def guild_bridged(db: Any) -> None:  # what ``discord bridge-guild`` stores
        await db.execute(
            "UPDATE user_login SET net_metadata=$1, net_metadata_v=$2 WHERE id=$3",
            json.dumps(dataclasses.asdict(state)),
            DiscordLoginState.VERSION,
            login.id,
        )

    return await store_login(db_url, login, guild_bridged)


async def open_portals(
    fake: FakeDiscord, user: Any, bob: Any, channels: list[Any], timeout: float = 300
) -> list[str]:
    """Bob speaks in each channel; the bridge makes its portal and invites ``user`` (the bot
    login's owner), who joins. Returns the room ids in the order the invites came."""
    for channel in channels:
        await fake.send_message(channel, bob, "first words")
    return await join_invites(user, len(channels), timeout)
