"""Management commands of the XMPP connector.

* ``xmpp-portal <room@muc.example.org>`` (admins): create the portal of a MUC, with its
  ``#_xmpp_...`` alias, and invite the admin.
* ``xmpp-dm <user@example.org>``: open a 1:1 chat with an XMPP user (the older name of
  ``start-chat xmpp <user@example.org>``, kept as an alias).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgekit.contract.commands import Command, CommandEvent
from bridgekit.contract.events import PortalKey
from bridgekit.portal.start_chat import open_dm

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
        alias = connector.alias_localpart(room)
        room_id = await ce.bridge.open_portal(PortalKey(room), ce.sender, alias)
        if room_id is None:
            await ce.reply("Could not create the portal.")
            return
        await ce.reply(f"Portal for {room}: {room_id} (you are invited).")

    async def dm(ce: CommandEvent) -> None:
        """Kept for those used to it: ``start-chat xmpp <jid>`` does the same."""
        if len(ce.args) != 1:
            await ce.reply("Usage: xmpp-dm <user@example.org>")
            return
        await ce.reply(await open_dm(connector, ce.bridge, ce.sender, ce.args[0]))

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
            "Start a 1:1 chat with an XMPP user (as `start-chat xmpp <jid>`).",
            "<user@example.org>",
            section="XMPP",
        ),
    ]
