"""IRC lines -> remote events for the runtime.

Channel events are reported by one connection per channel (the connector's *listener* for it),
so a channel with ten bridged users does not produce ten copies of every line. Lines from the
bridge's own puppets are never bridged back (with echo-message they confirm delivery instead).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridgekit.events import (
    ChatInfo,
    ChatMember,
    EventSender,
    MessageContent,
    RemoteChatInfoChange,
    RemoteChatResync,
    RemoteMembership,
    RemoteMessage,
    RemoteReaction,
    RemoteTyping,
)

from .formatting import find_mentions, irc_to_html, strip_irc_formatting
from .lines import Message, build_line
from .netsplit import is_netsplit_quit

if TYPE_CHECKING:
    from .puppet import Channel, IRCClient, Member

log = logging.getLogger("bridgekit.irc.handlers")

_TAG_SPLIT_RE = re.compile(r"(<[^>]*>)")
#: Why a JOIN was refused, by numeric (the server's own words follow in brackets).
JOIN_REFUSALS = {
    "403": "there is no such channel",
    "405": "you are in too many channels",
    "471": "the channel is full",
    "473": "the channel is invite-only",
    "474": "you are banned from it",
    "475": "it needs a channel key",
    "476": "the channel name is not valid",
    "477": "it needs a registered nick (see `irc storepass`)",
    "479": "the channel name is not allowed",
}
#: IRCv3 typing: a receiver treats ``active`` as over after 6 s without another one.
TYPING_TIMEOUT_MS = 6000


def parse_server_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class IncomingMixin:
    """Mixed into :class:`~bridges.irc.puppet.IRCClient`."""

    def on_line(self: IRCClient, msg: Message) -> None:
        handler = _HANDLERS.get(msg.command)
        if handler is not None:
            handler(self, msg)
        if not self._waiters:
            return
        for matcher, fut in list(self._waiters):
            if not fut.done():
                try:
                    matcher(msg, fut)
                except Exception as e:  # a broken matcher must not break the connection
                    fut.set_exception(e)
        self._waiters = [(m, f) for m, f in self._waiters if not f.done()]

    def wait_for_line(self: IRCClient, matcher: Any, timeout: float = 10) -> Any:
        """Future resolved by ``matcher(msg, fut)``; used by commands (WHOIS, NICK...)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((matcher, fut))
        return asyncio.wait_for(fut, timeout)

    # -- helpers -----------------------------------------------------------------------------

    def is_listener(self: IRCClient, folded_channel: str) -> bool:
        return self.connector.is_listener(self, folded_channel)

    def sender_of(self: IRCClient, msg: Message) -> EventSender:
        nick = msg.nick or ""
        folded = self.fold(nick)
        self.display[folded] = nick
        return EventSender(f"{self.server_name}/{folded}", login_id=self.login.id)

    def is_puppet(self: IRCClient, nick: str | None) -> bool:
        return (
            nick is not None
            and self.connector.puppet_for(self.server_name, self.fold(nick)) is not None
        )

    def _mention_html(
        self: IRCClient, body: str, formatted: str | None, nicks: Mapping[str, Member]
    ) -> tuple[str | None, list[str]]:
        """Pills for nicks mentioned in the text: (html or None, mentioned ids/mxids).

        ``nicks`` is keyed by folded nick (a channel's member dict as it stands), so the cost
        is one lookup per word of the line, not one pass per channel member.
        """
        if not nicks:
            return formatted, []
        casemapping = self._casemapping()
        if formatted is None:
            source = html.escape(body, quote=False)
            parts = [source]
        else:
            parts = _TAG_SPLIT_RE.split(formatted)
        mentioned: list[str] = []
        changed = False
        for i, part in enumerate(parts):
            if not part or part[0] == "<":
                continue
            found = find_mentions(part, nicks, casemapping=casemapping)
            if not found:
                continue
            out, pos = [], 0
            for start, end, member in found:
                target = self._mention_target(member.nick)
                mxid = target if target.startswith("@") else self.bridge.ghost_mxid(target)
                out.append(part[pos:start])
                out.append(
                    f'<a href="https://matrix.to/#/{html.escape(mxid)}">{part[start:end]}</a>'
                )
                pos = end
                if target not in mentioned:
                    mentioned.append(target)
            out.append(part[pos:])
            parts[i] = "".join(out)
            changed = True
        return ("".join(parts) if changed else formatted), mentioned

    def _casemapping(self: IRCClient) -> str:
        return self.conn.isupport.casemapping if self.conn else "rfc1459"

    def _mention_target(self: IRCClient, nick: str) -> str:
        """Remote id of a mentioned IRC user, or the MXID behind a Matrix user's puppet."""
        if self.conn is not None and self.conn.is_me(nick):
            return self.login.user_mxid
        folded = self.fold(nick)
        puppet = self.connector.puppet_for(self.server_name, folded)
        return puppet.login.user_mxid if puppet else f"{self.server_name}/{folded}"

    def _known_nicks(
        self: IRCClient, chan: Channel | None, other: str | None
    ) -> Mapping[str, Member]:
        """Folded nick -> member, the nicks a line may mention: the channel's members as kept
        up to date by JOIN/PART/QUIT/KICK/NICK/NAMES (no copy), or a DM's other side."""
        if chan is not None:
            return chan.members
        if other:
            from .puppet import Member

            return {self.fold(other): Member(other)}
        return {}

    # -- messages ----------------------------------------------------------------------------

    def _on_privmsg(self: IRCClient, msg: Message) -> None:
        params = msg.params
        if len(params) < 2 or not msg.nick or msg.user is None:
            return  # server notices and malformed lines
        target, text = params[0], params[1]
        conn = self.conn
        if target and target[0] in self.chantypes:
            folded = self.fold(target)
            if not self.is_listener(folded):
                # Another connection bridges this channel: every bridged user in a channel
                # receives each line, so this stays cheap. Only our own echo matters here.
                if self._echo and conn is not None and conn.is_me(msg.nick):
                    self._on_echo(target, text, msg)
                return
        else:
            folded = None
        if conn is not None and conn.is_me(msg.nick):
            self._on_echo(target, text, msg)
            return
        if self.is_puppet(msg.nick):
            return  # another bridged Matrix user: already on Matrix
        self._bridge_message(msg, target, text, folded)

    def _on_echo(self: IRCClient, target: str, text: str, msg: Message) -> None:
        if not self._echo:
            return
        waiters = self._echo.get(self.fold(target))
        if not waiters:
            return
        for i, (expected, fut) in enumerate(waiters):
            if expected == text:
                del waiters[i]
                if not fut.done():
                    fut.set_result(msg.tags.get("msgid"))
                break

    def _on_cannot_send(self: IRCClient, msg: Message) -> None:
        """401/403/404: the server refused a message; fail its wait at once (not after the
        echo timeout, which would stall the room) so the sender is told."""
        target = msg.param(1) or ""
        reason = msg.param(2) or "refused by the server"
        for _, fut in self._echo.get(self.fold(target), []):
            if not fut.done():
                fut.set_exception(SendRefusedError(f"{target}: {reason}"))

    def _bridge_message(
        self: IRCClient, msg: Message, target: str, text: str, folded: str | None = None
    ) -> None:
        if self._history_refs and msg.tags.get("batch") in self._history_refs:
            return  # chathistory replay: fetch_messages collects it
        event = self.message_event(msg, target, text, live=True, folded=folded)
        if event is not None:
            self.emit(event)

    def message_event(
        self: IRCClient,
        msg: Message,
        target: str,
        text: str,
        live: bool,
        folded: str | None = None,
    ) -> RemoteMessage | None:
        """The event for a PRIVMSG/NOTICE, or None (CTCP, not ours to bridge).

        ``folded``: the channel target already folded by the caller.
        """
        notice = msg.command == "NOTICE"
        msgtype = "m.notice" if notice else "m.text"
        if text.startswith("\x01"):
            ctcp = text.strip("\x01")
            verb, _, rest = ctcp.partition(" ")
            if verb.upper() != "ACTION" or notice:
                return None  # CTCP requests/replies are not chat; we do not answer them either
            text, msgtype = rest, "m.emote"
        is_chan = bool(target) and target[0] in self.chantypes
        if is_chan:
            if folded is None:
                folded = self.fold(target)
            if live and not self.is_listener(folded):
                return None
            key = self.chan_key(target)
            chan = self.channels.get(folded)
        else:
            if not self.conn or not self.conn.is_me(target):
                return None
            key = self.dm_key(msg.nick or "")
            chan = None
        body, formatted = irc_to_html(text)
        nicks = self._known_nicks(chan, None if is_chan else msg.nick)
        formatted, mentioned = self._mention_html(body, formatted, nicks)
        content = MessageContent(body=body, html=formatted, msgtype=msgtype)
        content.mentions = mentioned
        reply = msg.tags.get("+draft/reply") or msg.tags.get("+reply")
        if reply:
            content.reply_to = reply
        return RemoteMessage(
            key,
            self.sender_of(msg),
            timestamp=parse_server_time(msg.tags.get("time")),
            id=msg.tags.get("msgid", ""),
            content=content,
        )

    def _on_batch(self: IRCClient, msg: Message) -> None:
        ref = msg.param(0) or ""
        if ref.startswith("+") and msg.param(1) in ("chathistory", "draft/chathistory"):
            self._history_refs.add(ref[1:])
        elif ref.startswith("-"):
            self._history_refs.discard(ref[1:])

    async def chathistory(
        self: IRCClient, target: str, portal: Any, after: str, limit: int
    ) -> list[RemoteMessage]:
        assert self.conn is not None
        collected: list[Message] = []
        refs: set[str] = set()

        def matcher(m: Message, fut: asyncio.Future[None]) -> None:
            ref = m.param(0) or ""
            if (
                m.command == "BATCH"
                and ref.startswith("+")
                and m.param(1) in ("chathistory", "draft/chathistory")
                and self.fold(m.param(2) or "") == (self.fold(target))
            ):
                refs.add(ref[1:])
            elif m.command in ("PRIVMSG", "NOTICE") and m.tags.get("batch") in refs:
                collected.append(m)
            elif m.command == "BATCH" and ref[1:] in refs and ref.startswith("-"):
                fut.set_result(None)
            elif m.command == "FAIL" and m.param(0) == "CHATHISTORY":
                fut.set_result(None)

        waiter = self.wait_for_line(matcher, timeout=30)
        await self.conn.send(
            build_line("CHATHISTORY", "AFTER", target, f"msgid={after}", str(min(limit, 100)))
        )
        await waiter
        out = []
        for m in collected:
            if len(m.params) < 2 or not m.nick or self.is_puppet(m.nick):
                continue
            if self.conn.is_me(m.nick):
                continue
            event = self.message_event(m, m.params[0], m.params[1], live=False)
            if event is not None:
                out.append(event)
        return out

    def _on_tagmsg(self: IRCClient, msg: Message) -> None:
        """Client-only tags without text: ``+draft/react`` reactions and ``+typing``."""
        if not msg.params or not msg.nick or self.is_puppet(msg.nick):
            return
        if self.conn is not None and self.conn.is_me(msg.nick):
            return
        target = msg.params[0]
        if target and target[0] in self.chantypes:
            if not self.is_listener(self.fold(target)):
                return
            key = self.chan_key(target)
        elif self.conn is not None and self.conn.is_me(target):
            key = self.dm_key(msg.nick)
        else:
            return
        react, reply = msg.tags.get("+draft/react"), msg.tags.get("+draft/reply")
        if react and reply:
            self.emit(
                RemoteReaction(
                    key,
                    self.sender_of(msg),
                    target_id=reply,
                    key=react,
                    timestamp=parse_server_time(msg.tags.get("time")),
                )
            )
        typing = msg.tags.get("+typing")
        if typing in ("active", "paused", "done"):
            # A lost "done" must not leave the ghost typing: "active" expires like IRCv3 says.
            self.emit(
                RemoteTyping(
                    key,
                    self.sender_of(msg),
                    typing=typing == "active",
                    timeout_ms=TYPING_TIMEOUT_MS,
                )
            )

    # -- membership --------------------------------------------------------------------------

    def _on_join(self: IRCClient, msg: Message) -> None:
        from .puppet import Channel, Member

        if not msg.params or not msg.nick:
            return
        name = msg.params[0]
        folded = self.fold(name)
        assert self.conn is not None
        if self.conn.is_me(msg.nick):
            self.join_refused.pop(folded, None)
            self.channels[folded] = Channel(name, names_buf={})
            self.channels[folded].members[self.fold(msg.nick)] = Member(msg.nick)
            self.connector.add_listener(self, folded)
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

        The user is told once per refusal where they look (the portal room and their
        management room), and their messages to it are refused at once (``prepare_channel``)
        instead of vanishing. Nothing retries on a timer: a reconnect, an INVITE, ``irc join``
        or a message after ``JOIN_RETRY`` seconds tries again.
        """
        name = msg.param(1) or ""
        folded = self.fold(name)
        if not name or folded in self.channels or folded not in self.wanted:
            return
        why = JOIN_REFUSALS.get(msg.command, "the server refused")
        said = msg.param(2)
        reason = f"{why} ({said})" if said and len(msg.params) > 2 else why
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
        """Invited to a channel we want but could not join (+i): join it now."""
        if len(msg.params) < 2 or self.conn is None or not self.conn.is_me(msg.params[0]):
            return
        name = msg.params[1]
        folded = self.fold(name)
        if folded in self.wanted and folded not in self.channels:
            self.join_refused.pop(folded, None)
            self.conn.send_raw_safe("JOIN", name)

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

    def _on_kick(self: IRCClient, msg: Message) -> None:
        if len(msg.params) < 2:
            return
        assert self.conn is not None
        name, nick, reason = msg.params[0], msg.params[1], msg.param(2)
        if self.conn.is_me(nick):
            log.info("%s was kicked from %s by %s: %s", self.login.id, name, msg.nick, reason)
            self._lost_channel(self.fold(name))
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
            elif ch in always_arg or (adding and ch in set_arg):
                if args:
                    args.pop(0)
        if not self.is_listener(folded):
            return
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
        info = ChatInfo(name=chan.name, topic=chan.topic, members=self.members_of(chan))
        if first:
            self.emit(RemoteChatResync(self.chan_key(chan.name), info=info))

    def _spawn(self: IRCClient, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)


_HANDLERS = {
    "PRIVMSG": IncomingMixin._on_privmsg,
    "NOTICE": IncomingMixin._on_privmsg,
    "TAGMSG": IncomingMixin._on_tagmsg,
    "JOIN": IncomingMixin._on_join,
    "PART": IncomingMixin._on_part,
    "KICK": IncomingMixin._on_kick,
    "QUIT": IncomingMixin._on_quit,
    "NICK": IncomingMixin._on_nick,
    "TOPIC": IncomingMixin._on_topic,
    "332": IncomingMixin._on_rpl_topic,
    "MODE": IncomingMixin._on_mode,
    "353": IncomingMixin._on_names,
    "366": IncomingMixin._on_end_of_names,
    "BATCH": IncomingMixin._on_batch,
    "401": IncomingMixin._on_cannot_send,  # ERR_NOSUCHNICK
    "403": IncomingMixin._on_no_such_channel,  # ERR_NOSUCHCHANNEL
    "404": IncomingMixin._on_cannot_send,  # ERR_CANNOTSENDTOCHAN
    "INVITE": IncomingMixin._on_invite,
    **{code: IncomingMixin._on_join_refused for code in JOIN_REFUSALS if code != "403"},
}


class EchoLostError(ConnectionError):
    """The connection dropped before the server echoed our line back (echo-message): the
    line may never have reached the server, so it is sent again on the next connection."""


class SendRefusedError(Exception):
    """The IRC server said it did not deliver a message (moderated channel, no such nick)."""
