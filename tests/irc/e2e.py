"""Helpers for the IRC end-to-end tests."""

from __future__ import annotations

from typing import Any

from bridgekit.bridge import Bridge
from bridges.irc.connector import IRCConnector
from bridges.irc.lines import Message
from bridges.irc.names import casefold, escape_localpart
from tests.harness.inspircd import InspIRCd, IrcTestClient
from tests.harness.matrix_client import MatrixTestClient

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
