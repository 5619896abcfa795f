"""Helpers for the IRC end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from bridgekit.bridge import Bridge
from bridgekit.testing.matrix_client import MatrixTestClient
from bridges.irc.connector import IRCConnector
from bridges.irc.lines import Message
from bridges.irc.names import casefold, escape_localpart
from tests.harness.inspircd import InspIRCd, IrcTestClient

DOMAIN = "bridgekit.test"
SERVER = "local"
CAPS = ["server-time", "message-tags", "echo-message"]


def irc_networks(ircd: InspIRCd, **server: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "host": ircd.host,
        "port": ircd.port,
        "send_rate": 500,
        "burst": 500,
        "idle_timeout": 0,
        "reconnect": {"min_delay": 0.3, "max_delay": 2},
        "netsplit_debounce": 1,
    }
    section.update(server)
    return {"irc": {"enabled": True, "servers": {SERVER: section}}}


async def start_bridge(make_bridge: Any, ircd: InspIRCd, **server: Any) -> Bridge:
    return await make_bridge(networks=irc_networks(ircd, **server))


def connector(bridge: Bridge) -> IRCConnector:
    conn = bridge.connectors["irc"]
    assert isinstance(conn, IRCConnector)
    return conn


def record_sent_lines(conn: Any, monkeypatch: Any) -> list[bytes]:
    """Every line ``conn`` writes from now on (still sent), for asserting what reached the
    wire."""
    written: list[bytes] = []
    send = conn.send

    def recording_send(*lines: bytes, **kwargs: Any) -> Any:
        written.extend(lines)
        return send(*lines, **kwargs)

    monkeypatch.setattr(conn, "send", recording_send)
    return written


def alias(channel: str) -> str:
    return f"#_irc_{SERVER}_{escape_localpart(casefold(channel))}:{DOMAIN}"


def ghost(nick: str) -> str:
    return f"@_irc_{SERVER}_{escape_localpart(casefold(nick))}:{DOMAIN}"


def is_join_of(channel: str, exclude: str | None = None):
    def check(m: Message) -> bool:
        return (
            m.command == "JOIN"
            and casefold(m.param(0) or "") == casefold(channel)
            and (exclude is None or casefold(m.nick or "") != casefold(exclude))
        )

    return check


def is_puppet_join(channel: str):
    """A bridged Matrix user's puppet (nick template ``{displayname}[m]``) joining."""
    return lambda m: is_join_of(channel)(m) and (m.nick or "").endswith("[m]")


def privmsg_from(nick: str, text: str | None = None, command: str = "PRIVMSG"):
    def check(m: Message) -> bool:
        return (
            m.command == command
            and casefold(m.nick or "") == casefold(nick)
            and (text is None or m.trailing == text)
        )

    return check


def member_event(user_id: str, membership: str):
    """An ``m.room.member`` event putting ``user_id`` in ``membership``."""
    return lambda e: (
        e.get("type") == "m.room.member"
        and e.get("state_key") == user_id
        and e.get("content", {}).get("membership") == membership
    )


def body_is(text: str):
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == text


async def open_channel(
    user: MatrixTestClient, channel: str, watcher: IrcTestClient, timeout: float = 30
) -> tuple[str, str]:
    """``user`` joins the channel's alias; returns (room id, the user's puppet nick on IRC)."""
    room_id = await user.join(alias(channel))
    joined = await watcher.wait_for(is_puppet_join(channel), timeout)
    assert joined.nick
    return room_id, joined.nick


async def irc_user(ircd: InspIRCd, nick: str, *channels: str) -> IrcTestClient:
    client = ircd.client()
    await client.connect(nick, caps=CAPS)
    for channel in channels:
        await client.join(channel)
    return client


@dataclass
class ChannelScene:
    """Alice on Matrix and bob on IRC (the channel's operator, first in), in one channel.

    After :meth:`open`, alice is in the channel's portal room and her puppet is on IRC.
    """

    bridge: Bridge
    ircd: InspIRCd
    uid: Callable[[str], str]
    alice: MatrixTestClient
    bob: IrcTestClient
    channel: str
    room_id: str = ""
    puppet: str = ""  # alice's nick on IRC
    others: list[IrcTestClient] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        """``alice, bob, channel, room_id, puppet = scene``"""
        return iter((self.alice, self.bob, self.channel, self.room_id, self.puppet))

    async def open(self) -> str:
        """Alice joins the channel's alias; returns the room id once her puppet is in."""
        self.room_id, self.puppet = await open_channel(self.alice, self.channel, self.bob)
        return self.room_id

    async def irc_user(self, name: str, *channels: str) -> IrcTestClient:
        """Another IRC user (a unique nick from ``name``) in ``channels`` or the scene's
        channel; closed when the scene ends."""
        user = await irc_user(self.ircd, self.uid(name), *(channels or (self.channel,)))
        self.others.append(user)
        return user


@asynccontextmanager
async def channel_scene(
    make_bridge: Any,
    ircd: InspIRCd,
    bridge_env: Any,
    uid: Callable[[str], str],
    *,
    open_portal: bool = True,
    bob_name: str = "bob",
    **server: Any,
) -> AsyncIterator[ChannelScene]:
    """A bridge on ``ircd`` (``server`` overrides its config), alice, bob and a fresh channel;
    with ``open_portal`` alice is already in its room. IRC users are closed at the end."""
    bridge = await start_bridge(make_bridge, ircd, **server)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid(bob_name), channel)
    scene = ChannelScene(bridge, ircd, uid, alice, bob, channel)
    async with alice:
        try:
            if open_portal:
                await scene.open()
            yield scene
        finally:
            for user in (bob, *scene.others):
                await user.close()
