"""IRC lines -> remote events for the runtime: the dispatch table, messages (PRIVMSG, NOTICE,
CTCP ACTION, TAGMSG reactions and typing) and chathistory; channel state (JOIN, PART, KICK,
QUIT, NICK, TOPIC, MODE, NAMES) is in :mod:`.channels`.

Channel events are reported by one connection per channel (the connector's *listener* for it),
so a channel with ten bridged users does not produce ten copies of every line. Lines from the
bridge's own puppets are never bridged back (with echo-message they confirm delivery instead).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bridgekit.contract.connector import SendRefused
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteMessage,
    RemoteReaction,
    RemoteTyping,
)

from .channels import JOIN_REFUSALS, ChannelMixin
from .lines import Message, build_line, parse_server_time
from .mentions import find_mentions
from .mirc_to_html import irc_to_html

if TYPE_CHECKING:
    from .puppet import Channel, IRCClient, Member

log = logging.getLogger("bridgekit.irc.handlers")

_TAG_SPLIT_RE = re.compile(r"(<[^>]*>)")
#: IRCv3 typing: a receiver treats ``active`` as over after 6 s without another one.
TYPING_TIMEOUT_MS = 6000


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
            # Not one already failed (its connection dropped): the line sent again waits
            # behind it, and the echo is that one's.
            if expected == text and not fut.done():
                del waiters[i]
                fut.set_result(msg.tags.get("msgid"))
                break

    def _on_cannot_send(self: IRCClient, msg: Message) -> None:
        """401/403/404: the server refused a message; fail its wait at once (not after the
        echo timeout, which would stall the room) so the sender is told."""
        target = msg.param(1) or ""
        reason = msg.param(2) or "refused by the server"
        for _, fut in self._echo.get(self.fold(target), []):
            if not fut.done():
                why = "m.no_permission" if msg.command == "404" else "m.foreign_network_error"
                fut.set_exception(SendRefusedError(f"{target}: {reason}", why))

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
            self._typing_tag(key, self.sender_of(msg), typing == "active")

    def _typing_tag(self: IRCClient, key: PortalKey, sender: EventSender, active: bool) -> None:
        """A lost "done" must not leave the ghost typing: "active" is over after 6 s without
        another, as IRCv3 says. The bridge ends it itself, on time: a homeserver's own expiry
        of the typing timeout is coarse (Synapse checks every 5 s in 5 s buckets: up to 16 s).
        """
        expiry = self.connector.typing_expiry
        slot = (key.id, sender.remote_id)
        timer = expiry.pop(slot, None)
        if timer is not None:
            timer.cancel()
        self.emit(RemoteTyping(key, sender, typing=active, timeout_ms=TYPING_TIMEOUT_MS))
        if active:

            def expire() -> None:
                expiry.pop(slot, None)
                if self.connector.clients.get(self.login.id) is self:  # not logged out since
                    self.emit(RemoteTyping(key, sender, typing=False))

            loop = asyncio.get_running_loop()
            expiry[slot] = loop.call_later(TYPING_TIMEOUT_MS / 1000, expire)

    def _spawn(self: IRCClient, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)


_HANDLERS = {
    "PRIVMSG": IncomingMixin._on_privmsg,
    "NOTICE": IncomingMixin._on_privmsg,
    "TAGMSG": IncomingMixin._on_tagmsg,
    "JOIN": ChannelMixin._on_join,
    "PART": ChannelMixin._on_part,
    "KICK": ChannelMixin._on_kick,
    "QUIT": ChannelMixin._on_quit,
    "NICK": ChannelMixin._on_nick,
    "TOPIC": ChannelMixin._on_topic,
    "332": ChannelMixin._on_rpl_topic,
    "324": ChannelMixin._on_channel_modes,
    "MODE": ChannelMixin._on_mode,
    "353": ChannelMixin._on_names,
    "366": ChannelMixin._on_end_of_names,
    "BATCH": IncomingMixin._on_batch,
    "401": IncomingMixin._on_cannot_send,  # ERR_NOSUCHNICK
    "403": ChannelMixin._on_no_such_channel,  # ERR_NOSUCHCHANNEL
    "404": IncomingMixin._on_cannot_send,  # ERR_CANNOTSENDTOCHAN
    "INVITE": ChannelMixin._on_invite,
    **{code: ChannelMixin._on_join_refused for code in JOIN_REFUSALS if code != "403"},
}


class EchoLostError(ConnectionError):
    """The connection dropped before the server echoed our line back (echo-message): the
    line may never have reached the server, so it is sent again on the next connection."""


class SendRefusedError(SendRefused):
    """The IRC server said it did not deliver a message (moderated channel, no such nick):
    a permanent failure for the message's send status, not one to retry."""
