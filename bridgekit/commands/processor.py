"""Management-room commands: the framework and the built-in commands.

In a user's management room the prefix is optional; elsewhere commands need it (``!`` by
default). Each command declares the permission level it needs; ``help`` lists only what the
caller may run. Connectors add commands with :meth:`NetworkConnector.commands`. A command or
login field that carries a secret says so (``Command.secret``, ``LoginField.secret``) and the
processor keeps it out of room history (:mod:`.command_secrets`).
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from typing import Any

from mautrix.errors import MatrixRequestError

from .. import __version__
from ..contract.commands import Command, CommandEvent
from ..contract.connector import LoginInfo, LoginProcess, LoginStep
from ..database.store import BridgeUser
from ..objects.portal import Portal
from .command_secrets import redact_in_management_room, refuse_outside_management, remove_mistyped
from .runtime import CommandRuntime, RuntimeCommandEvent
from .secret_typos import mistyped_secret

log = logging.getLogger("bridgekit.commands.processor")

LEVEL_NAMES = {1: "relay", 2: "user", 3: "admin"}


@dataclass
class PendingLogin:
    network: str
    process: LoginProcess
    step: LoginStep
    values: dict[str, str] = field(default_factory=dict)
    field_index: int = 0


class CommandProcessor:
    def __init__(self, runtime: CommandRuntime) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.send_notice = runtime.send_notice
        self.commands: dict[str, Command] = {}
        self.pending_logins: dict[str, PendingLogin] = {}
        self._prefix = runtime.settings.command_prefix
        for cmd in _builtin_commands():
            self.register(cmd)

    def register(self, cmd: Command) -> None:
        for name in [cmd.name, *cmd.aliases]:
            self.commands[name] = cmd

    @property
    def prefix(self) -> str:
        return self._prefix

    async def get_or_create_user(self, mxid: str) -> BridgeUser:
        user = await self.store.get_user(mxid)
        if user is None:
            user = BridgeUser(mxid)
            await self.store.save_user(user)
        return user

    async def maybe_handle(
        self, room_id: str, evt: dict[str, Any], body: str, level: int, portal: Portal | None
    ) -> bool:
        """Handle ``body`` if it is a command (or a login answer). True if it was consumed."""
        sender = evt["sender"]
        is_management = room_id in self.store.management_rooms
        text = body.strip()
        if text.startswith(self.prefix):
            text = text[len(self.prefix) :].strip()
        elif not is_management:
            return False
        user = await self.store.get_user(sender) if level else None
        is_management = bool(user and user.management_room == room_id)
        if not is_management and not body.strip().startswith(self.prefix):
            return False  # someone else's management room (the bot is there for its owner)
        if level == 0:
            log.info("Ignoring command from %s: not permitted by the config", sender)
            return True
        name, _, raw_args = text.partition(" ")
        pending = self.pending_logins.get(sender) if is_management else None
        if pending is not None:
            # Everything but `cancel` answers the login's question ("cancel123" too).
            if name.lower() != "cancel":
                await self._login_answer(room_id, sender, body.strip(), evt.get("event_id"))
                return True
            if raw_args.strip() and pending.step.fields[pending.field_index].secret:
                await redact_in_management_room(self.runtime, room_id, sender, evt.get("event_id"))
        if not text:
            return True
        try:
            args = shlex.split(raw_args)
        except ValueError:
            args = raw_args.split()
        cmd = self.commands.get(name.lower())
        ce = self._event(
            cmd, room_id, sender, name.lower(), args, raw_args.strip(), level, portal, is_management
        )
        if cmd is None or not cmd.carries_secret(args):
            guess = mistyped_secret(self.commands, ce.command, args)
            if guess is not None:
                event_id = evt.get("event_id")
                await remove_mistyped(self.runtime, room_id, sender, event_id, guess, is_management)
                return True
        if cmd is None:
            # Not echoed in the management room: a word sent there that is no command is
            # often a password typed again after its login ended (failed, or a restart).
            what = "That is not a command" if is_management else f"Unknown command `{name}`"
            await ce.reply(f"{what}. Send `{self.hint(ce)}help` for a list.")
            return True
        if cmd.carries_secret(args):
            # Before the permission check: a secret is removed whoever sent it.
            if not is_management:
                await refuse_outside_management(self.runtime, room_id, evt.get("event_id"), name)
                return True
            await redact_in_management_room(self.runtime, room_id, sender, evt.get("event_id"))
        if level < cmd.level:
            await ce.reply(
                f"You do not have permission to use `{cmd.name}` "
                f"(it needs {LEVEL_NAMES[cmd.level]} level, you have {LEVEL_NAMES[level]})."
            )
            return True
        try:
            await cmd.handler(ce)
        except Exception as e:
            log.exception("Command %s failed", cmd.name)
            await ce.reply(f"Command `{cmd.name}` failed: {e}")
        return True

    async def secret_in_edit(self, room_id: str, evt: dict[str, Any], level: int) -> bool:
        """An edit is never run as a command, but one that turns a message into a secret
        command (or answers a login's secret question) puts the secret in room history all
        the same: remove it like the message it imitates. True if it was one."""
        new = evt["content"].get("m.new_content")
        body = new.get("body") if isinstance(new, dict) else None
        if not isinstance(body, str) or not level:
            return False
        sender = evt["sender"]
        user = await self.store.get_user(sender)
        is_management = bool(user and user.management_room == room_id)
        text = body.strip()
        if text.startswith(self.prefix):
            text = text[len(self.prefix) :].strip()
        elif not is_management:
            return False
        pending = self.pending_logins.get(sender) if is_management else None
        name, _, raw_args = text.partition(" ")
        cmd = self.commands.get(name.lower())
        try:
            args = shlex.split(raw_args)
        except ValueError:
            args = raw_args.split()
        secret_answer = pending is not None and pending.step.fields[pending.field_index].secret
        if (
            not secret_answer
            and (cmd is None or not cmd.carries_secret(args))
            and mistyped_secret(self.commands, name, args) is None
        ):
            return False
        if is_management:
            await redact_in_management_room(self.runtime, room_id, sender, evt.get("event_id"))
            await self.send_notice(
                room_id, "Edits are not read as commands or answers: send it as a new message."
            )
        else:
            await refuse_outside_management(self.runtime, room_id, evt.get("event_id"), name)
        return True

    def _event(
        self,
        cmd: Command | None,
        room_id: str,
        sender: str,
        command: str,
        args: list[str],
        raw_args: str,
        level: int,
        portal: Portal | None,
        is_management: bool,
    ) -> CommandEvent:
        """A connector's command gets its network's BridgeAPI (and nothing of the runtime);
        the runtime's own commands, and the answer to an unknown one, the runtime's event."""
        if cmd is not None and cmd.network is not None:
            api = self.runtime.connectors[cmd.network].bridge
            return CommandEvent(
                api,
                room_id,
                sender,
                command,
                args,
                raw_args,
                level,
                portal,
                is_management,
                self.send_notice,
            )
        return RuntimeCommandEvent(
            room_id=room_id,
            sender=sender,
            command=command,
            args=args,
            raw_args=raw_args,
            level=level,
            portal=portal,
            is_management=is_management,
            send_notice=self.send_notice,
            runtime=self.runtime,
            processor=self,
        )

    def hint(self, ce: CommandEvent) -> str:
        return "" if ce.is_management else self.prefix

    # -- login flows --------------------------------------------------------------------------

    async def start_login(self, ce: CommandEvent, network: str, flow_id: str | None) -> None:
        connector = self.runtime.connectors.get(network)
        if connector is None:
            await ce.reply(
                f"Unknown network `{network}`. Available: {', '.join(self.runtime.connectors)}"
            )
            return
        flows = connector.login_flows()
        if not flows:
            await ce.reply(f"{connector.display_name} has no login flows.")
            return
        flow = next((f for f in flows if f.id == flow_id), flows[0] if flow_id is None else None)
        if flow is None:
            await ce.reply(f"Unknown login flow. Flows: {', '.join(f.id for f in flows)}")
            return
        process = await connector.create_login(ce.sender, flow.id)
        step = await process.start()
        pending = PendingLogin(network, process, step)
        self.pending_logins[ce.sender] = pending
        await self._advance(ce.room_id, ce.sender, pending)

    async def _advance(self, room_id: str, sender: str, pending: PendingLogin) -> None:
        step = pending.step
        if step.is_complete:
            self.pending_logins.pop(sender, None)
            await self._finish_login(room_id, sender, pending.network, step.complete)
            return
        fld = step.fields[pending.field_index]
        desc = f" ({fld.description})" if fld.description else ""
        intro = f"{step.instructions}\n" if pending.field_index == 0 and step.instructions else ""
        await self.send_notice(
            room_id, f"{intro}Please enter your {fld.name}{desc}, or `cancel` to stop."
        )

    async def _login_answer(
        self, room_id: str, sender: str, answer: str, event_id: str | None
    ) -> None:
        pending = self.pending_logins[sender]
        fld = pending.step.fields[pending.field_index]
        if fld.secret:
            await redact_in_management_room(self.runtime, room_id, sender, event_id)
        pending.values[fld.id] = answer
        pending.field_index += 1
        if pending.field_index < len(pending.step.fields):
            await self._advance(room_id, sender, pending)
            return
        try:
            pending.step = await pending.process.submit(pending.values)
        except Exception as e:
            self.pending_logins.pop(sender, None)
            await self.send_notice(room_id, f"Login failed: {e}")
            return
        pending.values, pending.field_index = {}, 0
        await self._advance(room_id, sender, pending)

    async def _finish_login(
        self, room_id: str, sender: str, network: str, info: LoginInfo | None
    ) -> None:
        assert info is not None
        await self.get_or_create_user(sender)
        info.user_mxid, info.network = sender, network
        if not info.id:
            info.id = self.runtime.logins.new_login_id()
        await self.runtime.logins.add_login(info)
        await self.send_notice(
            room_id,
            f"Logged in to {network} as {info.remote_name or info.remote_id} (login {info.id}).",
        )

    async def cancel_login(self, sender: str) -> bool:
        pending = self.pending_logins.pop(sender, None)
        if pending is None:
            return False
        await pending.process.cancel()
        return True


# ---------------------------------------------------------------------------------------------
# Built-in commands


async def cmd_help(ce: RuntimeCommandEvent) -> None:
    procs = ce.processor
    prefix = procs.hint(ce)
    if ce.args:
        cmd = procs.commands.get(ce.args[0].lower())
        if cmd is None or ce.level < cmd.level:
            await ce.reply(f"No command `{ce.args[0]}` available to you.")
            return
        usage = f" {cmd.usage}" if cmd.usage else ""
        await ce.reply(f"{prefix}{cmd.name}{usage}: {cmd.help}")
        return
    sections: dict[str, list[str]] = {}
    seen: set[str] = set()
    for cmd in procs.commands.values():
        if cmd.name in seen or ce.level < cmd.level:
            continue
        seen.add(cmd.name)
        usage = f" {cmd.usage}" if cmd.usage else ""
        sections.setdefault(cmd.section, []).append(f"{prefix}{cmd.name}{usage} - {cmd.help}")
    lines = []
    for section, items in sections.items():
        lines.append(f"{section}:")
        lines.extend(f"  {i}" for i in sorted(items))
    await ce.reply("\n".join(lines))


async def cmd_version(ce: RuntimeCommandEvent) -> None:
    nets = ", ".join(f"{c.display_name}" for c in ce.runtime.connectors.values())
    await ce.reply(f"bridgekit {__version__} (networks: {nets or 'none'})")


async def cmd_ping(ce: RuntimeCommandEvent) -> None:
    logins = ce.runtime.logins.clients_of(ce.sender)
    if not logins:
        await ce.reply("Pong. You have no logins.")
        return
    states = ce.runtime.logins.states
    lines = []
    for c in logins:
        st = states.get(c.login.id)
        line = f"{c.login.network} {c.login.remote_name or c.login.remote_id}: "
        line += st.state.value if st is not None else "UNKNOWN"
        if st is not None and st.message:  # why it is so (or what is amiss while connected)
            line += f" ({st.message})"
        lines.append(line)
    await ce.reply("Pong.\n" + "\n".join(lines))


async def cmd_login(ce: RuntimeCommandEvent) -> None:
    if not ce.is_management:
        # Its questions (a password) would be asked, and answered, where others read them.
        await ce.reply("Log in from your management room (a direct chat with me).")
        return
    if not ce.args:
        await ce.reply(
            f"Usage: login <network> [flow]. Networks: {', '.join(ce.runtime.connectors)}"
        )
        return
    await ce.processor.start_login(ce, ce.args[0].lower(), ce.args[1] if len(ce.args) > 1 else None)


async def cmd_cancel(ce: RuntimeCommandEvent) -> None:
    if await ce.processor.cancel_login(ce.sender):
        await ce.reply("Login cancelled.")
    else:
        await ce.reply("Nothing to cancel.")


def _find_login(ce: RuntimeCommandEvent, selector: str | None) -> LoginInfo | None:
    clients = ce.runtime.logins.clients_of(ce.sender)
    if selector is None:
        return clients[0].login if len(clients) == 1 else None
    for c in clients:
        if selector in (c.login.id, c.login.network, c.login.remote_id):
            return c.login
    return None


async def cmd_logout(ce: RuntimeCommandEvent) -> None:
    login = _find_login(ce, ce.args[0] if ce.args else None)
    if login is None:
        await ce.reply("Which login? Give its id or network (see `list-logins`).")
        return
    await ce.runtime.logins.remove_login(login.id)
    await ce.reply(f"Logged out of {login.network} ({login.remote_name or login.remote_id}).")


async def cmd_list_logins(ce: RuntimeCommandEvent) -> None:
    clients = ce.runtime.logins.clients_of(ce.sender)
    if not clients:
        await ce.reply("You have no logins. Use `login <network>` to add one.")
        return
    states = ce.runtime.logins.states
    lines = []
    for c in clients:
        st = states.get(c.login.id)
        state = st.state.value if st else "UNKNOWN"
        msg = f" ({st.message})" if st and st.message else ""
        who = c.login.remote_name or c.login.remote_id
        lines.append(f"* {c.login.id}: {c.login.network} as {who} - {state}{msg}")
    await ce.reply("\n".join(lines))


async def cmd_login_matrix(ce: RuntimeCommandEvent) -> None:
    if not ce.args:
        await ce.reply("Usage: login-matrix <access token of your Matrix account>")
        return
    token = ce.args[0]
    intent = ce.runtime.matrix.real_user_intent(ce.sender, token)
    try:
        whoami = await intent.whoami()
    except MatrixRequestError as e:
        await ce.reply(f"That token did not work: {e.message}")
        return
    if whoami.user_id != ce.sender:
        await ce.reply("That token belongs to another user.")
        return
    user = await ce.processor.get_or_create_user(ce.sender)
    user.double_puppet = token
    await ce.runtime.store.save_user(user)
    await ce.reply("Double puppeting enabled: what you send from the remote side appears as you.")


async def cmd_logout_matrix(ce: RuntimeCommandEvent) -> None:
    user = await ce.runtime.store.get_user(ce.sender)
    if not user or not user.double_puppet:
        await ce.reply("Double puppeting with a personal token is not enabled.")
        return
    user.double_puppet = None
    await ce.runtime.store.save_user(user)
    await ce.reply("Double puppeting disabled.")


def _builtin_commands() -> list[Command]:
    from ..portal.start_chat import start_chat_command
    from .portal_commands import portal_commands  # it imports this module

    return [
        *portal_commands(),
        start_chat_command(),
        Command(
            "help", cmd_help, "Show the commands you can use, or details of one.", "[command]", 1
        ),
        Command("version", cmd_version, "Show the bridge version.", level=1),
        Command(
            "ping", cmd_ping, "Check that the bridge answers and how your logins are.", level=1
        ),
        Command("login", cmd_login, "Log in to a network.", "<network> [flow]", section="Logins"),
        Command("cancel", cmd_cancel, "Cancel a login in progress.", section="Logins"),
        Command(
            "logout", cmd_logout, "Log out of a network.", "[login id|network]", section="Logins"
        ),
        Command(
            "list-logins", cmd_list_logins, "List your logins and their state.", section="Logins"
        ),
        Command(
            "login-matrix",
            cmd_login_matrix,
            "Enable double puppeting with your access token.",
            "<token>",
            section="Double puppeting",
            secret=True,
        ),
        Command(
            "logout-matrix",
            cmd_logout_matrix,
            "Disable double puppeting.",
            section="Double puppeting",
        ),
    ]
