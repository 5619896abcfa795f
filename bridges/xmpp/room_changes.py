"""What a Matrix user changes in a MUC portal, done by their occupant in the room.

The :class:`MembershipHandler` and :class:`RoomMetaHandler` capabilities of
:class:`~bridges.xmpp.client.XMPPClient`, with their implementation: the user's own joins
and leaves become their occupant's; kicks, bans and invites of others, topic, name and
power levels go to the room through :mod:`bridges.xmpp.muc_admin`. Kept apart from the
client's messages because these are room administration, each with its own refusals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridgekit.contract.connector import MembershipHandler, RoomMetaHandler
from bridgekit.contract.events import MatrixMembership, MatrixRoomMeta

from .jid import clean_text
from .muc_room import ACCESS_REFUSALS, JoinError

if TYPE_CHECKING:
    from .client import XMPPClient


class RoomChanges(MembershipHandler, RoomMetaHandler):
    """Matrix memberships and room metadata of a MUC portal, applied by the user's occupant."""

    async def handle_matrix_membership(self: XMPPClient, change: MatrixMembership) -> None:
        portal = change.portal
        if portal.receiver:
            return
        room = portal.id
        if change.target_remote is None:
            if change.target != self.login.user_mxid:
                return
            if change.membership == "join":
                state = self.connector.muc.rooms.get(room)
                rejoin = state is not None and state.joined(self.login.id)
                await self.want_room(room)
                try:
                    await self.ensure_joined(room)
                except JoinError as e:
                    refusal = ACCESS_REFUSALS.get(e.condition)
                    if refusal is None or not await self.kept_out(room, refusal, e.text):
                        raise
                    return
                if rejoin:  # a join over a join: the display name changed, the nick follows
                    await self.change_nick()
            elif change.membership in ("leave", "kick", "ban"):
                self.connector.muc.leave(self.login.id, self.jid, room, change.reason or "")
                await self.forget_room(room)
            return
        remote = change.target_remote
        if change.membership in ("kick", "ban"):
            await self.ensure_joined(room)
            if change.membership == "ban" and "/" not in remote:
                item = {"affiliation": "outcast", "jid": remote}
            else:
                nick = self.connector.muc.nick_of_remote(room, remote)
                if nick is None:
                    return
                item = {"role": "none", "nick": nick}
            await self.connector.muc.admin(self.jid, room, item, change.reason)
        elif change.membership == "invite" and "/" not in remote:
            await self.ensure_joined(room)
            from xml.etree import ElementTree as ET

            msg = self.connector.outbound.message(self.full_jid, room, "normal")
            x = ET.SubElement(msg.xml, "{http://jabber.org/protocol/muc#user}x")
            ET.SubElement(x, "{http://jabber.org/protocol/muc#user}invite", {"to": remote})
            msg.send()

    async def handle_matrix_room_meta(self: XMPPClient, change: MatrixRoomMeta) -> None:
        if change.portal.receiver:
            return
        muc = self.connector.muc
        room = change.portal.id
        if change.topic is not None:
            to, _, _ = await self._target(change.portal)
            msg = self.connector.outbound.message(self.full_jid, to, "groupchat")
            msg["subject"] = clean_text(change.topic)[:1000]
            msg.send()
        if change.name is not None:
            await self.ensure_joined(room)
            try:
                await muc.rename(self.jid, room, change.name)
            except (PermissionError, TimeoutError) as e:
                await muc.notice(room, f"The XMPP room was not renamed: {e}.")
        # Power levels of Matrix users whose level changed: {mxid: new level}.
        levels = getattr(change, "power_levels", None)
        if isinstance(levels, dict) and levels:
            await self._apply_power_levels(room, levels)

    async def _apply_power_levels(self: XMPPClient, room: str, levels: dict[str, int]) -> None:
        """Matrix users who are occupants get the affiliation their new level maps to."""
        await self.ensure_joined(room)
        state = self.connector.muc.rooms.get(room)
        for mxid, level in levels.items():
            target = self.connector.client_of_user(mxid)
            if state is None or target is None or not state.joined(target.login.id):
                continue
            try:
                await self.connector.muc.apply_power(
                    self.jid, room, target.jid, state.nick_of[target.login.id], int(level)
                )
            except (PermissionError, TimeoutError) as e:
                await self.connector.muc.notice(
                    room, f"The power level of {mxid} was not applied in the XMPP room: {e}."
                )
