"""What a Matrix user changes in a channel portal, done by their IRC connection.

Mixed into :class:`~bridges.irc.puppet.IRCClient` (the ``MembershipHandler`` and
``RoomMetaHandler`` capabilities): the user's own joins and leaves become JOIN and PART
(remembered as the channels the connection wants), kicks and bans of IRC users KICK and
``MODE +b`` where the connection has ops, and a new topic TOPIC. Kept apart from message
sending (:mod:`bridges.irc.outgoing`) because these change the channel, not its talk.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bridgekit.contract.events import MatrixMembership, MatrixRoomMeta

from .lines import build_line
from .names import validate_channel
from .outgoing import one_line

if TYPE_CHECKING:
    from .puppet import IRCClient

log = logging.getLogger("bridgekit.irc.outgoing")


class ChannelChangesMixin:
    """Matrix memberships and topics of a channel portal, as IRC lines."""

    async def join_channel(self: IRCClient, name: str, wait: bool = True) -> None:
        validate_channel(name, self.chantypes)
        await self.load_state()
        folded = self.fold(name)
        if folded not in self.wanted:
            self.wanted[folded] = name
            await self.save_channels()
        assert self.conn is not None
        done = self.conn.send(self.join_line(name))
        if wait:
            await done

    async def part_channel(self: IRCClient, name: str, reason: str = "") -> None:
        await self.load_state()
        folded = self.fold(name)
        self.join_refused.pop(folded, None)
        if self.wanted.pop(folded, None) is not None:
            await self.save_channels()
        await self.set_channel_key(folded, None)
        if folded in self.channels and self.conn is not None:
            params = [name, one_line(reason)] if reason else [name]
            await self.conn.send(build_line("PART", *params))

    def has_ops(self: IRCClient, name: str) -> bool:
        chan = self.channels.get(self.fold(name))
        me = chan.members.get(self.fold(self.nick)) if chan else None
        return me is not None and bool(me.modes & {"o", "q", "a"})

    async def handle_matrix_membership(self: IRCClient, change: MatrixMembership) -> None:
        self.touch()
        name = self.channel_name(change.portal)
        if name is None:
            return
        if change.target == self.login.user_mxid:
            if change.membership == "join":
                await self.join_channel(name, wait=False)
            elif change.membership in ("leave", "kick", "ban"):
                await self.part_channel(name, change.reason or "")
            return
        if change.membership not in ("kick", "ban") or not change.target_remote:
            return
        nick = self.nick_of_remote(change.target_remote)
        if nick is None or self.connector.puppet_by_remote_id(change.target_remote):
            return
        if not self.has_ops(name):
            log.info("%s cannot kick %s from %s: no ops", self.nick, nick, name)
            return
        assert self.conn is not None
        lines = []
        if change.membership == "ban":
            lines.append(build_line("MODE", name, "+b", f"{nick}!*@*"))
        reason = one_line(change.reason or "") or f"Kicked by {one_line(change.sender_name or '')}"
        lines.append(build_line("KICK", name, nick, reason[:300]))
        await self.conn.send(*lines)

    async def handle_matrix_room_meta(self: IRCClient, change: MatrixRoomMeta) -> None:
        self.touch()
        name = self.channel_name(change.portal)
        if name is None or change.topic is None or self.conn is None:
            return
        chan = self.channels.get(self.fold(name))
        topic = one_line(change.topic)[:300]
        if chan is not None and chan.topic == topic:
            return  # our own topic coming back
        await self.conn.send(build_line("TOPIC", name, topic))
