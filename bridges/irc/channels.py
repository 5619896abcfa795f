"""IRC channel state -> remote events: JOIN, PART, KICK, QUIT (netsplits debounced), NICK,
TOPIC, MODE (power levels) and NAMES (membership sync).

Like the message handlers, these report a channel's events from its listener connection only;
every connection keeps its own view of the channels it is in (members, modes, topic).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from bridgekit.contract.events import (
    ChatInfo,
    ChatMember,
    RemoteChatInfoChange,
    RemoteChatResync,
    RemoteMembership,
)

from .lines import Message, parse_server_time
from .mirc import strip_irc_formatting
from .names import InvalidNameError, validate_channel, validate_channel_key
from .netsplit import is_netsplit_quit

if TYPE_CHECKING:
    from .puppet import Channel, IRCClient, Member

log = logging.getLogger("bridgekit.irc.handlers")

#: Why a JOIN was refused, by numeric (the server's own words follow in brackets).
JOIN_REFUSALS = {
    "403": "there is no such channel",
    "405": "you are in too many channels",
    "471": "the channel is full",
    "473": "the channel is invite-only",
    "474": "you are banned from it",
    "475": "it needs a channel key (`irc join <#channel> <key>`)",
    "476": "the channel name is not valid",
    "477": "it needs a registered nick (see `irc storepass`)",
    "479": "the channel name is not allowed",
}


#: Channel modes that close a channel to whoever finds its room: invite-only, key.
CLOSING_MODES = frozenset("ik")


class ChannelMixin:
    """Mixed into :class:`~bridges.irc.puppet.IRCClient`, with the message handlers of
    :mod:`.handlers` (which dispatch lines here)."""

    def _on_join(self: IRCClient, msg: Message) -> None:
        from .puppet import Channel, Member

        if not msg.params or not msg.nick:
            return
        name = msg.params[0]
        folded = self.fold(name)
        assert self.conn is not None
        if self.conn.is_me(msg.nick):
            self.join_refused.pop(folded, None)
            if folded in self.invite_on_join:  # `irc join`: the user may not be in the room
                self.invite_on_join.discard(folded)
                self._spawn(self.bridge.invite_to_portal(self.login.id, self.chan_key(name)))
            self.channels[folded] = Channel(name, names_buf={})
            self.channels[folded].members[self.fold(msg.nick)] = Member(msg.nick)
            self.connector.add_listener(self, folded)
            if self.is_listener(folded):
                self.query_modes(folded)
            if self.wanted.get(folded) != name:
                self.wanted[folded] = name
                self._spawn(self.save_channels())
            return
        chan = self.channels.get(folded)
        if chan is None:
            return
        user = self.fold(msg.nick)
        chan.members[user] = Member(msg.nick)
        self.display[user] = msg.nick
        if self.is_puppet(msg.nick) or not self.is_listener(folded):
            return
        if self.netsplit.rejoined(folded, user):
            return
        self.emit(
            RemoteMembership(
                self.chan_key(name),
                self.sender_of(msg),
                timestamp=parse_server_time(msg.tags.get("time")),
                target=self.rid(msg.nick),
                membership="join",
            )
        )

    def _on_join_refused(self: IRCClient, msg: Message) -> None:
        """405/471/473/474/475/477...: the server kept us out of a channel we want to be in.

        With ``follow_channel_access`` (the default) the user is put out of the channel's
        room, as IRC put them out of the channel, and the channel is forgotten: an INVITE or
        ``irc join`` brings them back. Otherwise they stay, are told once per refusal where
        they look (the portal room and their management room), and their messages to it are
        refused at once (``prepare_channel``) instead of vanishing; nothing retries on a
        timer: a reconnect, an INVITE, ``irc join`` or a message after ``JOIN_RETRY`` seconds
        tries again.
        """
        name = msg.param(1) or ""
        folded = self.fold(name)
        if not name or folded in self.channels or folded not in self.wanted:
            return
        why = JOIN_REFUSALS.get(msg.command, "the server refused")
        said = msg.param(2)
        reason = f"{why} ({said})" if said and len(msg.params) > 2 else why
        if self.follows_channel_access:
            name = self.wanted[folded]
            self._lost_channel(folded)
            quiet = folded in self.quiet_join_errors  # `irc join` answers there
            self._spawn(self.kept_out(name, f"could not join {name}: {reason}", tell=not quiet))
            return
        previous = self.join_refused.get(folded)
        self.join_refused[folded] = (reason, time.monotonic())
        if previous is not None and previous[0] == reason:
            return  # already said (a retry, a reconnect's rejoin): no repeat
        management = folded not in self.quiet_join_errors  # else `irc join` answers there
        self._spawn(self.report_join_refused(self.wanted[folded], reason, management))

    def _on_no_such_channel(self: IRCClient, msg: Message) -> None:  # 403
        """403 answers both a JOIN and a message to a channel that does not exist."""
        self._on_cannot_send(msg)
        self._on_join_refused(msg)

    def _on_invite(self: IRCClient, msg: Message) -> None:
        """Invited to a channel we want but could not join (+i): join it now. Invited to
        another: the user is told how to accept (joining is theirs to decide)."""
        if len(msg.params) < 2 or self.conn is None or not self.conn.is_me(msg.params[0]):
            return
        name = msg.params[1]
        folded = self.fold(name)
        if folded in self.wanted and folded not in self.channels:
            self.join_refused.pop(folded, None)
            self.conn.send_raw_safe("JOIN", name)
        elif folded not in self.channels:
            with contextlib.suppress(InvalidNameError):
                name = validate_channel(name, self.chantypes)
                text = (
                    f"{msg.nick or 'Someone'} invites you to {name} on {self.server_name}: "
                    f"send `irc join {name}` to join it."
                )
                self._spawn(self.bridge.notify_user(self.login.user_mxid, text))

    def _leave(
        self: IRCClient,
        name: str,
        nick: str,
        membership: str,
        reason: str | None,
        msg: Message,
        sender_nick: str | None = None,
    ) -> None:
        folded, user = self.fold(name), self.fold(nick)
        chan = self.channels.get(folded)
        if chan is not None:
            chan.members.pop(user, None)
        if self.is_puppet(nick) or not self.is_listener(folded):
            return
        sender = None
        if sender_nick:
            sender = self.sender_of(Message("KICK", nick=sender_nick))
        self.emit(
            RemoteMembership(
                self.chan_key(name),
                sender,
                timestamp=parse_server_time(msg.tags.get("time")),
                target=self.rid(nick),
                membership=membership,
                reason=reason,
            )
        )

    def _on_part(self: IRCClient, msg: Message) -> None:
        if not msg.params or not msg.nick:
            return
        assert self.conn is not None
        folded = self.fold(msg.params[0])
        if self.conn.is_me(msg.nick):
            self._lost_channel(folded)
            return
        self._leave(msg.params[0], msg.nick, "leave", msg.param(1), msg)

    def _lost_channel(self: IRCClient, folded: str, forget: bool = True) -> None:
        self.channels.pop(folded, None)
        self.connector.remove_listener(self, folded)
        if forget and self.wanted.pop(folded, None) is not None:
            self._spawn(self.save_channels())
            if folded in self.keys:
                self._spawn(self.set_channel_key(folded, None))

    def _on_kick(self: IRCClient, msg: Message) -> None:
        if len(msg.params) < 2:
            return
        assert self.conn is not None
        name, nick, reason = msg.params[0], msg.params[1], msg.param(2)
        if self.conn.is_me(nick):
            log.info("%s was kicked from %s by %s: %s", self.login.id, name, msg.nick, reason)
            self._lost_channel(self.fold(name))
            if self.follows_channel_access:
                why = f"was kicked from {name} by {msg.nick}" + (f": {reason}" if reason else "")
                self._spawn(self.kept_out(name, why))
            return
        if self.is_puppet(msg.nick):  # a Matrix kick bridged by us: done on Matrix already
            chan = self.channels.get(self.fold(name))
            if chan is not None:
                chan.members.pop(self.fold(nick), None)
            return
        self._leave(name, nick, "kick", reason, msg, sender_nick=msg.nick)

    def _on_quit(self: IRCClient, msg: Message) -> None:
        if not msg.nick or (self.conn and self.conn.is_me(msg.nick)):
            return
        user = self.fold(msg.nick)
        reason = msg.param(0)
        split = is_netsplit_quit(reason) and self.server.netsplit_debounce > 0
        for folded, chan in list(self.channels.items()):
            if user not in chan.members:
                continue
            if split and self.is_listener(folded) and not self.is_puppet(msg.nick):
                chan.members.pop(user, None)
                self.netsplit.quit(folded, user, reason or "")
                continue
            self._leave(chan.name, msg.nick, "leave", reason, msg)

    def _netsplit_leaves(self: IRCClient, batch: list[tuple[str, str, str]]) -> None:
        for folded, user, reason in batch:
            chan = self.channels.get(folded)
            if chan is None or not self.is_listener(folded):
                continue
            self.emit(
                RemoteMembership(
                    self.chan_key(chan.name),
                    None,
                    target=f"{self.server_name}/{user}",
                    membership="leave",
                    reason=f"netsplit: {reason}",
                )
            )

    def _on_nick(self: IRCClient, msg: Message) -> None:
        if not msg.params or not msg.nick:
            return
        new = msg.params[0]
        old_f, new_f = self.fold(msg.nick), self.fold(new)
        assert self.conn is not None
        if self.conn.is_me(new):  # the connection already took the new nick
            self.connector.set_puppet_nick(self, msg.nick, new)
        puppet = self.is_puppet(new) or self.is_puppet(msg.nick)
        self.display[new_f] = new
        for folded, chan in self.channels.items():
            member = chan.members.pop(old_f, None)
            if member is None:
                continue
            member.nick = new
            chan.members[new_f] = member
            if puppet or not self.is_listener(folded):
                continue
            key = self.chan_key(chan.name)
            ts = parse_server_time(msg.tags.get("time"))
            if old_f == new_f:  # case change only: same ghost, new display name
                self.emit(
                    RemoteChatResync(
                        key,
                        info=ChatInfo(
                            members=[ChatMember(self.rid(new), self.power_of(member), name=new)]
                        ),
                    )
                )
                continue
            self.emit(
                RemoteMembership(
                    key,
                    None,
                    timestamp=ts,
                    target=self.rid(msg.nick),
                    membership="leave",
                    reason=f"changed nick to {new}",
                )
            )
            self.emit(
                RemoteMembership(
                    key,
                    None,
                    timestamp=ts,
                    target=self.rid(new),
                    membership="join",
                    power_level=self.power_of(member) or None,
                )
            )

    def _on_topic(self: IRCClient, msg: Message) -> None:
        if len(msg.params) < 2:
            return
        folded = self.fold(msg.params[0])
        chan = self.channels.get(folded)
        if chan is not None:
            chan.topic = msg.params[1]
        if self.is_puppet(msg.nick) or not self.is_listener(folded):
            return
        self.emit(
            RemoteChatInfoChange(
                self.chan_key(msg.params[0]),
                self.sender_of(msg),
                timestamp=parse_server_time(msg.tags.get("time")),
                topic=strip_irc_formatting(msg.params[1]),
            )
        )

    def _on_rpl_topic(self: IRCClient, msg: Message) -> None:  # 332
        if len(msg.params) >= 3:
            chan = self.channels.get(self.fold(msg.params[1]))
            if chan is not None:
                chan.topic = strip_irc_formatting(msg.params[2])

    def _on_mode(self: IRCClient, msg: Message) -> None:
        if len(msg.params) < 2 or not self.conn:
            return
        name = msg.params[0]
        if not name or name[0] not in self.chantypes:
            return
        folded = self.fold(name)
        chan = self.channels.get(folded)
        if chan is None:
            return
        isup = self.conn.isupport
        chanmodes = (isup.chanmodes or "b,k,l,").split(",") + ["", "", "", ""]
        always_arg = set(chanmodes[0] + chanmodes[1])
        set_arg = set(chanmodes[2])
        args = msg.params[2:]
        adding = True
        changed: dict[str, Member] = {}
        key_seen, new_key = False, None
        for ch in msg.params[1]:
            if ch in "+-":
                adding = ch == "+"
                continue
            if ch in isup.prefix_modes:
                if not args:
                    break
                nick = args.pop(0)
                member = chan.members.get(self.fold(nick))
                if member is None:
                    continue
                (member.modes.add if adding else member.modes.discard)(ch)
                changed[self.fold(nick)] = member
            elif ch == "m":
                chan.moderated = adding
            elif ch in CLOSING_MODES:
                (chan.closing_modes.add if adding else chan.closing_modes.discard)(ch)
                if ch in always_arg or (adding and ch in set_arg):
                    arg = args.pop(0) if args else None
                    if ch == "k" and not (adding and arg == "*"):  # "+k *": a hidden key
                        key_seen, new_key = True, arg if adding else None
            elif (ch in always_arg or (adding and ch in set_arg)) and args:
                args.pop(0)
        if key_seen and folded in self.wanted:  # an operator changed the key: rejoins use it
            with contextlib.suppress(InvalidNameError):
                key = validate_channel_key(new_key) if new_key else None
                self._spawn(self.set_channel_key(folded, key))
        if not self.is_listener(folded):
            return
        self._report_closed(chan)
        for user, member in changed.items():
            if self.is_puppet(member.nick):
                continue
            self.emit(
                RemoteMembership(
                    self.chan_key(name),
                    None,
                    timestamp=parse_server_time(msg.tags.get("time")),
                    target=f"{self.server_name}/{user}",
                    membership="power",
                    power_level=self.power_of(member),
                )
            )

    def query_modes(self: IRCClient, folded: str) -> None:
        """Ask for the channel's modes (answered by 324): whether it is closed."""
        chan = self.channels.get(folded)
        if chan is not None and self.conn is not None:
            self.conn.send_raw_safe("MODE", chan.name)

    def _on_channel_modes(self: IRCClient, msg: Message) -> None:  # 324 RPL_CHANNELMODEIS
        if len(msg.params) < 3:
            return
        folded = self.fold(msg.params[1])
        chan = self.channels.get(folded)
        if chan is None:
            return
        chan.closing_modes = set(msg.params[2]) & CLOSING_MODES
        chan.moderated = "m" in msg.params[2]
        if self.is_listener(folded):
            self._report_closed(chan)

    def _report_closed(self: IRCClient, chan: Channel) -> None:
        """Tell the runtime when the channel opens or closes, so that its room's join rule
        follows: a channel with a key or invite-only must not be readable by whoever finds
        its room. An open channel is reported only once it was seen closed."""
        closed = bool(chan.closing_modes)
        if closed == chan.reported_closed or (not closed and chan.reported_closed is None):
            return
        chan.reported_closed = closed
        self.emit(RemoteChatInfoChange(self.chan_key(chan.name), None, joinable=not closed))

    def _on_names(self: IRCClient, msg: Message) -> None:  # 353
        from .puppet import Member

        if len(msg.params) < 4 or not self.conn:
            return
        chan = self.channels.get(self.fold(msg.params[2]))
        if chan is None:
            return
        if chan.names_buf is None:
            chan.names_buf = {}
        isup = self.conn.isupport
        for entry in msg.params[3].split():
            modes = set()
            while entry and entry[0] in isup.prefix_chars:
                modes.add(isup.prefix_modes[isup.prefix_chars.index(entry[0])])
                entry = entry[1:]
            nick = entry.split("!", 1)[0]
            if nick:
                chan.names_buf[self.fold(nick)] = Member(nick, modes)
                self.display[self.fold(nick)] = nick

    def _on_end_of_names(self: IRCClient, msg: Message) -> None:  # 366
        if len(msg.params) < 2:
            return
        folded = self.fold(msg.params[1])
        chan = self.channels.get(folded)
        if chan is None or chan.names_buf is None:
            return
        chan.members, chan.names_buf = chan.names_buf, None
        if not self.is_listener(folded):
            return
        first = not chan.synced
        chan.synced = True
        # NAMES just ended: everyone in the channel now, so ghosts of nicks that left while
        # this connection was away (the bridge stopped, the link dropped) leave the room.
        info = ChatInfo(
            name=chan.name,
            topic=chan.topic,
            members=self.members_of(chan),
            members_complete=True,
            parent=self.space_info(),
        )
        if first:
            self.emit(RemoteChatResync(self.chan_key(chan.name), info=info))
