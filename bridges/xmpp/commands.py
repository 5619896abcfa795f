"""Management commands of the XMPP connector.

* ``xmpp-portal <room@muc.example.org>`` (admins): create the portal of a MUC, with its
  ``#_xmpp_...`` alias, and invite the admin.
* ``xmpp-dm <user@example.org>``: open a 1:1 chat with an XMPP user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgekit.commands import Command, CommandEvent
from bridgekit.events import PortalKey

from .jid import parse_jid
from .login import puppet_login

if TYPE_CHECKING:
    from .connector import XMPPConnector


def connector_commands(connector: XMPPConnector) -> list[Command]:
    async def portal(ce: CommandEvent) -> None:
        if len(ce.args) != 1:
            await ce.reply("Usage: xmpp-portal <room@conference.example.org>")
            return
        room = connector.room_address(ce.args[0])
        if room is None:
            await ce.reply(f"{ce.args[0]!r} is not a room address.")
            return
        if not await connector.room_exists(room):
            await ce.reply(f"There is no XMPP room {room} (or its service did not answer).")
            return
        key = PortalKey(room)
        created = await ce.bridge.portals.get_or_create(
            connector.name, key, None, alias_localpart=connector.alias_localpart(room)
        )
        if created is None or created.mxid is None:
            await ce.reply("Could not create the portal.")
            return
        bot = ce.bridge.matrix.bot
        assert bot is not None
        try:
            await bot.invite_user(created.mxid, ce.sender)
        except Exception:
            pass  # already in the room
        await ce.reply(f"Portal for {room}: {created.mxid} (you are invited).")

    async def dm(ce: CommandEvent) -> None:
        if len(ce.args) != 1:
            await ce.reply("Usage: xmpp-dm <user@example.org>")
            return
        jid = parse_jid(ce.args[0])
        if jid is None or not jid.node or jid.domain == connector.component_jid:
            await ce.reply(f"{ce.args[0]!r} is not the address of an XMPP user.")
            return
        client = connector.client_of_user(ce.sender)
        if client is None:
            await ce.bridge.commands.get_or_create_user(ce.sender)
            try:
                await ce.bridge.add_login(puppet_login(connector, ce.sender))
            except ValueError as e:
                await ce.reply(str(e))
                return
            client = connector.client_of_user(ce.sender)
        assert client is not None
        created = await ce.bridge.portals.get_or_create(
            connector.name, PortalKey(jid.bare, client.login.id), client.login.id
        )
        if created is None:
            await ce.reply("Could not create the chat.")
            return
        await ce.reply(f"Chat with {jid.bare}: {created.mxid}")

    return [
        Command(
            "xmpp-portal",
            portal,
            "Create the portal of an XMPP room (MUC).",
            "<room@conference.example.org>",
            level=3,
            section="XMPP",
        ),
        Command(
            "xmpp-dm",
            dm,
            "Start a 1:1 chat with an XMPP user.",
            "<user@example.org>",
            section="XMPP",
        ),
    ]
