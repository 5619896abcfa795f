"""``start-chat <network> <identifier>`` (alias ``pm``): open a 1:1 chat with a remote user.

The connector turns what the person typed into a remote user and the login that reaches
them (:class:`~bridgekit.contract.connector.IdentifierResolver`); the runtime then makes or finds
the 1:1 portal and invites the person to its room, as it does for any portal. Connectors keep
their older commands (``irc pm``, ``xmpp-dm``) as thin aliases over :func:`open_dm`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..contract.commands import Command
from ..contract.connector import BridgeAPI, IdentifierResolver

if TYPE_CHECKING:
    from ..commands.runtime import RuntimeCommandEvent

__all__ = ["open_dm", "start_chat_command"]


USAGE = "<network> <identifier>"


async def open_dm(
    resolver: IdentifierResolver,
    api: BridgeAPI,
    user_mxid: str,
    identifier: str,
    theirs: Callable[[str], bool] | None = None,
) -> str:
    """Resolve ``identifier`` for ``user_mxid``, open the 1:1 portal and invite them.
    Returns the answer for the person (a malformed or unknown identifier, or a network that
    could not be asked (``ConnectionError``), is an answer too).
    ``theirs`` checks the login the connector chose is the person's: a resolver that picked
    the wrong one must not pull someone else into the chat."""
    network = api.network
    try:
        resolved = await resolver.resolve_identifier(user_mxid, identifier)
    except ValueError as e:
        return f"{identifier!r} is not a valid {network} identifier: {e}"
    except ConnectionError as e:  # the network could not be asked
        return f"Could not look up {identifier!r} on {network}: {e}"
    if resolved is None:
        return f"There is no {network} user {identifier!r}."
    if theirs is not None and not theirs(resolved.login_id):
        raise RuntimeError(f"{network} chose a login that is not {user_mxid}'s")
    chat = resolved.chat or await resolver.create_dm(resolved)
    room = await api.invite_to_portal(resolved.login_id, chat)
    if room is None:
        return f"Could not open a chat with {identifier!r} (no room could be made)."
    who = resolved.name or resolved.user_id
    return f"Chat with {who} ({api.ghost_mxid(resolved.user_id)}): {room} (invited)."


async def cmd_start_chat(ce: RuntimeCommandEvent) -> None:
    runtime = ce.runtime
    if len(ce.args) < 2:
        await ce.reply(f"Usage: `{ce.command} {USAGE}`")
        return
    network, identifier = ce.args[0].lower(), " ".join(ce.args[1:])
    connector = runtime.connectors.get(network)
    if connector is None:
        names = ", ".join(sorted(runtime.connectors)) or "none"
        await ce.reply(f"There is no network `{ce.args[0]}` here (networks: {names}).")
        return
    if not isinstance(connector, IdentifierResolver):
        await ce.reply(f"{connector.display_name} cannot start chats by identifier.")
        return

    def theirs(login_id: str) -> bool:
        client = runtime.logins.clients.get(login_id)
        return client is not None and client.login.user_mxid == ce.sender

    await ce.reply(await open_dm(connector, connector.bridge, ce.sender, identifier, theirs))


def start_chat_command() -> Command:
    return Command(
        "start-chat",
        cmd_start_chat,
        "Open a private chat with a remote user (an IRC nick, an XMPP address).",
        USAGE,
        section="Portals",
        aliases=["pm"],
    )
