"""Management-room commands (`irc nick`, `irc join`, ...) and the `login irc` flow.

Every argument is validated before it gets near a line: channel names with
:func:`validate_channel`, nicks with :func:`validate_nick`, and whatever is left goes through
:func:`build_line`, which refuses CR, LF and NUL. So ``irc join "#a\\r\\nQUIT"`` is an error
message, not a QUIT.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from bridgekit.contract.commands import Command, CommandEvent
from bridgekit.contract.connector import LoginField, LoginInfo, LoginProcess, LoginStep
from bridgekit.portal.start_chat import open_dm

from .identifiers import ensure_client
from .lines import Message, build_line
from .names import InvalidNameError, validate_channel, validate_channel_key, validate_nick

if TYPE_CHECKING:
    from .connector import IRCConnector
    from .puppet import IRCClient

HELP = (
    "IRC: `irc nick <nick>` change your nick; `irc join <#channel> [key]` join a channel "
    "(you are invited to its room; the key, if it has one, is stored encrypted for rejoins); "
    "`irc part <#channel>`; `irc pm <nick>` open a private chat (as `start-chat irc <nick>`); "
    "`irc whois <nick>`; `irc storepass <password>` store your NickServ/SASL password "
    "(encrypted); `irc reconnect`; `irc quit` disconnect and forget your connection. "
    "With several servers, put the server name first: `irc join libera #matrix`."
)
USAGE = "<nick|join|part|pm|whois|storepass|reconnect|quit> [server] [args]"


def irc_commands(connector: IRCConnector) -> list[Command]:
    async def handler(ce: CommandEvent) -> None:
        await run(connector, ce)

    def secret(args: list[str]) -> bool:
        """`irc storepass` carries a password, `irc join <#channel> <key>` a channel key."""
        sub = args[0].lower() if args else ""
        rest = [a for a in args[1:2] if a not in connector.servers] + args[2:]
        return sub == "storepass" or (sub == "join" and len(rest) > 1)

    return [
        Command(
            "irc",
            handler,
            HELP,
            USAGE,
            section="IRC",
            secret=secret,
            secret_subcommands=("storepass", "join"),
        )
    ]


async def _client(
    connector: IRCConnector, ce: CommandEvent, server: str, create: bool
) -> IRCClient | None:
    client = connector.puppet_of_user(server, ce.sender)
    if client is not None or not create:
        return client
    return await ensure_client(connector, server, ce.sender)


async def run(connector: IRCConnector, ce: CommandEvent) -> None:
    args = list(ce.args)
    if not args:
        await ce.reply(HELP)
        return
    sub = args.pop(0).lower()
    if args and args[0] in connector.servers:
        server = args.pop(0)
    elif len(connector.servers) == 1:
        server = next(iter(connector.servers))
    else:
        await ce.reply(f"Which server? One of: {', '.join(connector.servers) or 'none configured'}")
        return
    if sub == "quit":
        client = await _client(connector, ce, server, create=False)
        if client is None:
            await ce.reply(f"You are not connected to {server}.")
            return
        await ce.bridge.remove_login(client.login.id)
        await ce.reply(f"Disconnected from {server}. Speaking in an IRC room connects you again.")
        return
    if sub == "storepass":
        if len(args) != 1:
            await ce.reply("Usage: irc storepass [server] <password>")
            return
        client = await _client(connector, ce, server, create=True)
        assert client is not None
        await connector.store_password(client.login.id, args[0])
        client.use_password(args[0])
        await ce.reply(
            "Password stored (encrypted). It is used for SASL or NickServ from the "
            "next connection on; `irc reconnect` to use it now."
        )
        return
    if sub == "reconnect":
        client = await _client(connector, ce, server, create=True)
        assert client is not None
        if client.conn is not None:
            client.conn.reconnect("Reconnecting on request")
        await ce.reply(f"Reconnecting to {server}.")
        return
    if len(args) < 1:
        await ce.reply(f"Usage: irc {sub} [server] <argument>")
        return
    if sub in ("join", "part"):
        if len(args) > (2 if sub == "join" else 1):
            then = ", then its key if it has one" if sub == "join" else ""
            await ce.reply(f"`irc {sub}` takes one channel name{then}.")
            return
        try:
            channel = validate_channel(args[0])
            key = validate_channel_key(args[1]) if len(args) > 1 else None
        except InvalidNameError as e:
            await ce.reply(f"Not a valid channel name or key: {e}")
            return
        client = await _client(connector, ce, server, create=sub == "join")
        if client is None:
            await ce.reply(f"You are not connected to {server}.")
            return
        if sub == "join":
            await _join(ce, client, channel, key)
        else:
            await client.part_channel(channel)
            await ce.reply(f"Left {channel}.")
        return
    if sub in ("nick", "whois", "pm"):
        if len(args) > 1:
            await ce.reply(f"`irc {sub}` takes one nick.")
            return
        try:
            nick = validate_nick(args[0])
        except InvalidNameError as e:
            await ce.reply(f"Not a valid nick: {e}")
            return
        client = await _client(connector, ce, server, create=True)
        assert client is not None
        if sub == "nick":
            await _nick(ce, client, nick)
        elif sub == "whois":
            await _whois(ce, client, nick)
        else:  # kept for those used to it: `start-chat irc <nick>` does the same
            await ce.reply(await open_dm(connector, ce.bridge, ce.sender, f"{server}/{nick}"))
        return
    await ce.reply(f"Unknown subcommand `{sub}`. {HELP}")


async def _ready(client: IRCClient, timeout: float = 60) -> None:
    assert client.conn is not None
    await asyncio.wait_for(client.conn.ready.wait(), timeout)


async def _join(ce: CommandEvent, client: IRCClient, channel: str, key: str | None) -> None:
    folded = client.fold(channel)
    await client.load_state()
    old_key = client.keys.get(folded)

    def matcher(m: Message, fut: asyncio.Future[str]) -> None:
        errors = {"403", "405", "471", "473", "474", "475", "476", "477", "479"}
        if (
            m.command == "JOIN"
            and client.conn
            and client.conn.is_me(m.nick)
            and (client.fold(m.param(0) or "") == folded)
        ):
            fut.set_result("")
        elif m.command in errors and client.fold(m.param(1) or "") == folded:
            fut.set_result(m.trailing or m.command)

    waiter = client.wait_for_line(matcher, timeout=60)
    client.quiet_join_errors.add(folded)  # a refusal is this command's answer
    client.invite_on_join.add(folded)  # the room may exist without them: they are invited
    if key:  # the JOIN (and later rejoins) use it; kept only if the server takes it
        await client.set_channel_key(folded, key)
    try:
        await client.join_channel(channel)
        error = await waiter
    except (TimeoutError, ConnectionError):
        await ce.reply(f"Joining {channel} is taking long; you will be invited when it works.")
        return
    finally:
        client.quiet_join_errors.discard(folded)
    if error:
        client.invite_on_join.discard(folded)
    if error and key:
        await client.set_channel_key(folded, old_key)
    if error:
        await ce.reply(f"Could not join {channel}: {error}")
    else:
        await ce.reply(
            f"Joined {channel}: {client.connector.alias_for(client.server_name, channel)}"
        )


async def _nick(ce: CommandEvent, client: IRCClient, nick: str) -> None:
    await _ready(client)
    assert client.conn is not None
    old = client.conn.nick
    if client.fold(old) == client.fold(nick) and old == nick:
        await ce.reply(f"You are already {nick}.")
        return

    def matcher(m: Message, fut: asyncio.Future[str]) -> None:
        if m.command == "NICK" and client.fold(m.param(0) or "") == client.fold(nick):
            fut.set_result("")
        elif m.command in ("432", "433", "436", "437", "438", "447"):
            fut.set_result(m.trailing or m.command)

    waiter = client.wait_for_line(matcher, timeout=20)
    await client.conn.send(build_line("NICK", nick))
    error = await waiter
    if error:
        await ce.reply(f"Could not change nick to {nick}: {error}")
        return
    client.conn.wanted_nick = nick
    await client.connector.state.update(client.login.id, nick=nick)
    await ce.reply(f"You are now {nick}.")


async def _whois(ce: CommandEvent, client: IRCClient, nick: str) -> None:
    await _ready(client)
    assert client.conn is not None
    lines: list[str] = []

    def matcher(m: Message, fut: asyncio.Future[None]) -> None:
        if len(m.params) < 2 or client.fold(m.params[1]) != client.fold(nick):
            return
        p = m.params
        if m.command == "311" and len(p) >= 6:
            lines.append(f"{p[1]} is {p[2]}@{p[3]} ({p[5]})")
        elif m.command == "312" and len(p) >= 3:
            lines.append(f"server: {p[2]}")
        elif m.command == "319" and len(p) >= 3:
            lines.append(f"channels: {p[2]}")
        elif m.command == "330" and len(p) >= 3:
            lines.append(f"logged in as {p[2]}")
        elif m.command == "317" and len(p) >= 3:
            lines.append(f"idle {p[2]}s")
        elif m.command == "313":
            lines.append("is an IRC operator")
        elif m.command == "401":
            lines.append(f"{nick}: no such nick")
        elif m.command == "318":
            fut.set_result(None)

    waiter = client.wait_for_line(matcher, timeout=20)
    await client.conn.send(build_line("WHOIS", nick))
    await waiter
    await ce.reply("\n".join(lines) or f"No information about {nick}.")


class IRCLogin(LoginProcess):
    """`login irc`: server (if several), nick, optional password."""

    def __init__(self, connector: IRCConnector, user_mxid: str) -> None:
        self.connector = connector
        self.user_mxid = user_mxid

    async def start(self) -> LoginStep:
        fields = []
        if len(self.connector.servers) > 1:
            fields.append(LoginField("server", "server", ", ".join(self.connector.servers)))
        fields.append(LoginField("nick", "nick"))
        fields.append(
            LoginField("password", "password", "NickServ/SASL, or - for none", secret=True)
        )
        return LoginStep(instructions="Connect to IRC.", fields=fields)

    async def submit(self, values: dict[str, str]) -> LoginStep:
        server = values.get("server") or next(iter(self.connector.servers), "")
        if server not in self.connector.servers:
            raise ValueError(f"unknown server {server!r}")
        nick = validate_nick(values.get("nick", "").strip())
        info: LoginInfo = await self.connector.make_login(self.user_mxid, server, nick)
        password = values.get("password", "").strip()
        await self.connector.store_password(info.id, None if password in ("", "-") else password)
        await self.connector.state.update(info.id, nick=nick)
        return LoginStep(complete=info)


__all__ = ["IRCLogin", "irc_commands"]
