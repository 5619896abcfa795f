"""Helpers that make end-to-end tests read like conversations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mautrix.api import HTTPAPI

from bridgekit.bridge import Bridge
from bridgekit.contract.connector import LoginInfo
from bridgekit.testing import FakeClient, FakeConnector, FakeNetwork
from bridgekit.testing.matrix_client import MatrixTestClient


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


async def admin_client(synapse: Any) -> MatrixTestClient:
    """``@admin``, an admin in the test config: registered by the first test that needs it in a
    Synapse session, logged in again (a new device) by the others."""
    from bridgekit.testing.matrix_client import MatrixError

    try:
        return await synapse.register_user("admin")
    except MatrixError as e:
        if e.errcode != "M_USER_IN_USE":
            raise
        return await synapse.login("admin")


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


DOMAIN = "bridgekit.test"


async def login(bridge: Bridge, user: MatrixTestClient, remote_id: str) -> FakeClient:
    """Give ``user`` a fake-network login without going through the management room."""
    await bridge.commands.get_or_create_user(user.user_id)
    client = await bridge.add_login(
        LoginInfo(bridge.new_login_id(), user.user_id, "fake", remote_id, remote_id)
    )
    assert isinstance(client, FakeClient)
    return client


def fake(bridge: Bridge) -> FakeConnector:
    connector = bridge.connectors["fake"]
    assert isinstance(connector, FakeConnector)
    return connector


def ghost(remote_id: str) -> str:
    return f"@_fake_{remote_id}:{DOMAIN}"


async def open_portal(
    bridge: Bridge, user: MatrixTestClient, client: FakeClient, chat: str, first_from: str = "bob"
) -> str:
    """Make the remote side speak in ``chat`` so its portal is created; join it; return room."""
    await client.remote_message(chat, first_from, "hello from the remote side")
    room_id, _ = await user.wait_for_invite()
    await user.join(room_id)
    await user.wait_for_event(
        room_id, lambda e: e.get("content", {}).get("body") == "hello from the remote side"
    )
    return room_id


def body_is(text: str):
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == text


@dataclass
class PortalScene:
    """A Matrix user in a portal with a remote chat where "bob" speaks."""

    alice: MatrixTestClient
    client: FakeClient
    chat: str
    room_id: str
    net: FakeNetwork

    async def until_transactions_flow(self) -> None:
        """Ephemeral events (typing, receipts) are dropped by Synapse while it counts the
        appservice as down, e.g. after the previous test's bridge stopped: a message that
        reaches the network shows transactions flow again."""
        probe = await self.alice.send_text(self.room_id, "probe")
        await self.net.wait_for(lambda i: i.kind == "message" and i.data.event_id == probe)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.alice, self.client, self.chat, self.room_id, self.net))


@asynccontextmanager
async def portal_scene(
    bridge: Bridge, env: Any, uid: Callable[[str], str], **chat: Any
) -> AsyncIterator[PortalScene]:
    """Register alice, log her in to the fake network and open a portal with bob in it."""
    alice = await env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat_id = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat_id, members=[client.login.remote_id, "bob"], **chat)
        room_id = await open_portal(bridge, alice, client, chat_id)
        yield PortalScene(alice, client, chat_id, room_id, net)


def bot_joined(bridge: Bridge) -> Callable[[dict[str, Any]], bool]:
    """Matches the bridge bot's join (it answers commands in a room only once joined)."""
    return lambda e: (
        e.get("type") == "m.room.member"
        and e.get("state_key") == bridge.bot_mxid
        and e.get("content", {}).get("membership") == "join"
    )


def removed(user_id: str, *words: str) -> Callable[[dict[str, Any]], bool]:
    """The m.room.member event taking ``user_id`` out of a room, ``words`` in its reason."""

    def check(e: dict[str, Any]) -> bool:
        content = e.get("content", {})
        return (
            e.get("type") == "m.room.member"
            and e.get("state_key") == user_id
            and content.get("membership") == "leave"
            and all(w in str(content.get("reason", "")) for w in words)
        )

    return check


async def give_power(bridge: Bridge, room_id: str, user_id: str, level: int) -> None:
    """Set ``user_id``'s power in a room the bot made (so it can hand out power there)."""
    bot = bridge.matrix.bot
    assert bot is not None
    pls = await bot.get_power_levels(room_id)
    pls.set_user_level(user_id, level)
    await bot.set_power_levels(room_id, pls)


def notice_says(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: text in str(e.get("content", {}).get("body", ""))


async def room_with_bot(
    bridge: Bridge, user: MatrixTestClient, *, bot_is_admin: bool = True, **room: Any
) -> str:
    """A room ``user`` created with the bridge bot in it (as admin unless told otherwise)."""
    if bot_is_admin:
        room["power_level_content_override"] = {"users": {bridge.bot_mxid: 100}}
    invite = [bridge.bot_mxid, *room.pop("invite", [])]
    room_id = await user.create_room(invite=invite, **room)
    await user.wait_for_event(room_id, bot_joined(bridge))
    return room_id


def count_profile_calls(monkeypatch: Any) -> Counter[str]:
    """Counts the profile requests (``GET profile``, ``PUT profile``) and media uploads
    (``upload``) the bridge makes to the homeserver, whoever makes them (ghosts, the bot).
    Patched at the HTTP layer: intents copy their methods when they are made."""
    calls: Counter[str] = Counter()
    original = HTTPAPI.request

    async def counted(self: HTTPAPI, method: Any, path: Any, *args: Any, **kw: Any) -> Any:
        text = str(path)
        if "/profile/" in text:
            calls[f"{getattr(method, 'value', method)} profile"] += 1
        elif "/media/" in text and "/upload" in text:
            calls["upload"] += 1
        return await original(self, method, path, *args, **kw)

    monkeypatch.setattr(HTTPAPI, "request", counted)
    return calls


def member_is(user_id: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """A member event of ``user_id`` with these content fields (``...``: any mxc:// URI)."""

    def match(e: dict[str, Any]) -> bool:
        if e.get("type") != "m.room.member" or e.get("state_key") != user_id:
            return False
        content = e.get("content", {})
        return all(
            (str(content.get(k, "")).startswith("mxc://") if v is ... else content.get(k) == v)
            for k, v in fields.items()
        )

    return match


class BridgeProcess:
    """``bridgekit run`` in a child process, so that it can be killed with SIGKILL."""

    def __init__(self, cfg: Path, out: Path) -> None:
        self.cfg, self.out = cfg, out
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridgekit", "run", "-c", str(self.cfg)],
            stdout=open(self.out, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill_9(self) -> None:
        """SIGKILL, and wait for the process to be gone (a no-op if it is not running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def log_tail(self) -> str:
        return self.out.read_text()[-3000:] if self.out.exists() else ""
