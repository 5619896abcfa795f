"""Matrix events -> IRC lines.

Everything that leaves here is built by :func:`~bridges.irc.lines.build_line`, from text that
has been reduced to one line per IRC message (formatting converted, control characters dropped,
newlines turned into separate messages). A Matrix message handed to us while the connection
is down waits in the connection's send queue: it is never dropped.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bridgekit.contract.connector import FORWARD, FetchResult, MessageResult
from bridgekit.contract.events import (
    MatrixEdit,
    MatrixMessage,
    MatrixReaction,
    MatrixReactionRemove,
    MatrixTyping,
    PortalKey,
)
from bridgekit.contract.ids import localpart_of, server_of

from .handlers import EchoLostError, SendRefusedError
from .html_to_mirc import html_to_irc
from .lines import LineError, build_line
from .mirc import strip_irc_formatting
from .progress import line_ends, progress_value, resume_offset
from .split import estimate_prefix_len, max_privmsg_payload, split_message

if TYPE_CHECKING:
    from .puppet import IRCClient

log = logging.getLogger("bridgekit.irc.outgoing")

# C0 controls other than the mIRC formatting codes (and CR/LF, which split lines), plus DEL.
_CONTROL_RE = re.compile(r"[\x00\x01\x05-\x08\x0b\x0c\x0e\x10\x12-\x15\x17-\x1c\x7f]")
_SINGLE_LINE_RE = re.compile(r"[\r\n\x00]+")
_MEDIA = ("m.image", "m.file", "m.video", "m.audio")
ECHO_TIMEOUT = 10.0
#: Times a line whose connection dropped before the server echoed it is sent again.
ECHO_RESENDS = 3
#: IRCv3 typing: ``active`` at most this often, and repeated this often while typing lasts
#: (receivers expire an ``active`` after 6 s without another one).
TYPING_INTERVAL = 3.0
#: A Matrix typing notice that never ends (its "stopped" lost) stops being repeated after this.
TYPING_MAX = 30.0
#: While the server refuses us a channel, a message to it tries to JOIN again at most this often.
JOIN_RETRY = 60.0
_SYNTHETIC_ID = ("mx:", "pending:", "noid:")


def clean_text(text: str) -> str:
    return _CONTROL_RE.sub("", text.replace("\t", "    "))


def one_line(text: str) -> str:
    """For reasons, topics and other single-parameter text."""
    return _SINGLE_LINE_RE.sub(" ", clean_text(text)).strip()


def short_diff(old: str | None, new: str) -> str:
    """The words an edit changed ("teh cat" -> "the cat" gives "the"), or the whole text."""
    if not old:
        return new
    a, b = old.split(), new.split()
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    changed = [
        " ".join(b[j1:j2])
        for tag, _, _, j1, j2 in sm.get_opcodes()
        if tag in ("replace", "insert") and j2 > j1
    ]
    if not changed:
        return new
    result = " … ".join(changed)
    return result if len(result) < len(new) else new


class OutgoingMixin:
    """Mixed into :class:`~bridges.irc.puppet.IRCClient`."""

    # -- targets and names -------------------------------------------------------------------

    def target_for(self: IRCClient, portal: PortalKey) -> str | None:
        server, rest = portal.id.partition("/")[0], portal.id.partition("/")[2]
        if server != self.server_name or not rest:
            return None
        if portal.receiver:
            return self.display.get(rest, rest)
        return self.channel_name(portal)

    def nick_of_remote(self: IRCClient, remote_id: str | None) -> str | None:
        if not remote_id:
            return None
        server, _, folded = remote_id.partition("/")
        if server != self.server_name or not folded:
            return None
        puppet = self.connector.puppet_by_remote_id(remote_id)
        if puppet is not None:
            return puppet.nick
        return self.display.get(folded, folded)

    def pill_to_nick(self: IRCClient, mxid: str) -> str | None:
        if server_of(mxid) == self.bridge.domain:
            remote = self.connector.ghost_remote_id(localpart_of(mxid))
            if remote is not None:
                return self.nick_of_remote(remote)
        puppet = self.connector.puppet_of_user(self.server_name, mxid)
        return puppet.nick if puppet is not None else None

    # -- messages ----------------------------------------------------------------------------

    async def render(self: IRCClient, msg: MatrixMessage | MatrixEdit) -> str:
        mc = msg.content
        if mc.msgtype in _MEDIA and mc.media_url and mc.media_url.startswith("mxc://"):
            url = await self.bridge.media_url(mc.media_url, mc.body or "")
            text = f"{mc.body}: {url}" if mc.body else url
        elif mc.html:
            text = html_to_irc(mc.html, pill_to_nick=self.pill_to_nick)
        else:
            text = mc.body
        text = clean_text(text)
        if isinstance(msg, MatrixMessage):
            reply_nick = self.nick_of_remote(msg.reply_to_sender) if mc.reply_to else None
            if reply_nick and not text.lower().startswith(reply_nick.lower() + ":"):
                text = f"{reply_nick}: {text}"
        return text

    def _payload(self: IRCClient, target: str, command: str, emote: bool) -> int:
        conn = self.conn
        prefix = estimate_prefix_len(
            self.nick, conn.user if conn else None, conn.host if conn else None
        )
        return max_privmsg_payload(target, prefix, command=command) - (9 if emote else 0)

    def _build(
        self: IRCClient,
        command: str,
        target: str,
        chunks: list[str],
        emote: bool,
        first_tags: dict[str, str] | None,
    ) -> tuple[list[bytes], list[str]]:
        lines, texts = [], []
        for i, chunk in enumerate(chunks):
            text = f"\x01ACTION {chunk}\x01" if emote else chunk
            lines.append(build_line(command, target, text, tags=first_tags if i == 0 else None))
            texts.append(text)
        return lines, texts

    async def _paste(self: IRCClient, text: str) -> str | None:
        upload = getattr(self.bridge, "upload_media", None)
        if upload is None:
            return None
        try:
            mxc = await upload(
                strip_irc_formatting(text).encode("utf-8"),
                "text/plain; charset=utf-8",
                "message.txt",
            )
            return await self.bridge.media_url(mxc, "message.txt")
        except Exception:
            log.exception("Could not upload a long message")
            return None

    async def prepare_channel(self: IRCClient, portal: PortalKey) -> None:
        """Join a channel portal's channel before speaking in it (lazily, in queue order).

        Raises :class:`SendRefusedError` while the server refuses us the channel.
        """
        if portal.receiver:
            return
        name = self.channel_name(portal)
        if name is None or self.fold(name) in self.channels:
            return
        refused = self.join_refused.get(self.fold(name))
        if refused is not None and time.monotonic() - refused[1] < JOIN_RETRY:
            # Said at once, not after the echo timeout, and without a JOIN per message.
            raise SendRefusedError(f"{name}: could not join: {refused[0]}", "m.no_permission")
        await self.join_channel(name, wait=False)

    async def handle_matrix_message(self: IRCClient, msg: MatrixMessage) -> MessageResult:
        self.touch()
        target = self.target_for(msg.portal)
        if target is None:
            raise ValueError(f"{msg.portal} is not an IRC chat of {self.server_name}")
        text = await self.render(msg)
        mc = msg.content
        command = "NOTICE" if mc.msgtype == "m.notice" else "PRIVMSG"
        emote = mc.msgtype == "m.emote"
        payload = self._payload(target, command, emote)
        if msg.relay is not None:  # the relay label goes on every line, wrapped ones too
            payload = max(payload - msg.relay.overhead(), 16)
        marker = f"irc:sent:{self.login.id}:{msg.portal}"
        written = 0  # the text before this offset is on IRC already (see progress.py)
        if msg.maybe_sent:
            written = resume_offset(await self.bridge.get_kv(marker), msg.event_id, text)
        rest = text[written:].lstrip(" \t\r\n") if written else text
        chunks = split_message(rest, payload)
        if not chunks:
            if written:
                log.info("%s was written to IRC before a restart: not sent again", msg.event_id)
            return MessageResult(None)
        if written:
            log.info("%s: the rest of it goes out after a restart", msg.event_id)
        #: Per line: the offset in ``text`` just past it (what its marker names).
        ends = line_ends(rest, chunks, len(text) - len(rest))
        if len(chunks) > self.server.line_limit and self.server.paste_fallback:
            url = await self._paste(rest)
            if url is not None:
                suffix = f" (full message: {url})"
                room = payload - len(suffix.encode("utf-8")) - 4
                preview = split_message(chunks[0], max(room, 8))[0] if room > 8 else ""
                chunks = [f"{preview} …{suffix}" if preview else url]
                ends = [len(text)]
        if msg.relay is not None:
            chunks = [msg.relay.line(chunk) for chunk in chunks]
        tags = None
        conn = self.conn
        if (
            mc.reply_to
            and not mc.reply_to.startswith(_SYNTHETIC_ID)
            and conn is not None
            and ("message-tags" in conn.caps)
        ):
            tags = {"+draft/reply": mc.reply_to}
        try:
            lines, texts = self._build(command, target, chunks, emote, tags)
        except LineError:
            lines, texts = self._build(command, target, chunks, emote, None)
        await self.prepare_channel(msg.portal)
        folded = self.fold(target)
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[str | None]] = []

        def expect() -> asyncio.Future[str | None]:
            fut: asyncio.Future[str | None] = loop.create_future()
            waiters.append(fut)
            return fut

        def writing(todo: list[int]) -> Callable[[int, int], None]:
            # A line's echo is awaited (and lost with the connection) only once it is
            # written: a reconnect failing while it waits in the queue says nothing about it
            # (taken for lost, it went out twice once the server was back).
            def written(first: int, end: int) -> None:
                pending = self._echo.setdefault(folded, [])
                pending.extend((texts[i], echoes[i]) for i in todo[first:end])

            return written

        def marking(todo: list[int]) -> Callable[[int], Awaitable[None]]:
            async def mark(k: int) -> None:  # k: an index into ``todo``, -1 for none of it
                i = todo[k] if k >= 0 else todo[0] - 1
                end = ends[i] if i >= 0 else written
                await self.bridge.set_kv(marker, progress_value(msg.event_id, end, text))

            return mark

        assert self.conn is not None
        #: Per line to send: the future its echo resolves (replaced when it is sent again).
        echoes = {i: expect() for i in range(len(texts))}
        ids: list[str | None] = []
        try:
            todo = list(echoes)
            for _ in range(1 + ECHO_RESENDS):
                await self.conn.send(
                    *(lines[i] for i in todo), before_write=marking(todo), on_written=writing(todo)
                )
                if "echo-message" not in self.conn.caps:
                    break
                done, _ = await asyncio.wait(
                    [echoes[i] for i in todo],
                    timeout=ECHO_TIMEOUT,
                    return_when=asyncio.FIRST_EXCEPTION,
                )
                failed = [echoes[i].exception() for i in todo if echoes[i] in done]
                refused = [e for e in failed if e and not isinstance(e, EchoLostError)]
                if refused:
                    raise refused[0]  # the runtime tells the sender it was not delivered
                # Lines the connection dropped before the server echoed them may never have
                # arrived: they go out again, in order, on the next connection.
                todo = [i for i in todo if isinstance(echoes[i].exception(), EchoLostError)]
                if not todo:
                    break
                log.info("%s: sending %d unconfirmed line(s) again", self.login.id, len(todo))
                for i in todo:
                    echoes[i] = expect()
            else:
                raise EchoLostError(f"not confirmed after {1 + ECHO_RESENDS} connections")
            if "echo-message" in self.conn.caps:
                ids = [
                    f.result() if f.done() and not f.exception() else None for f in echoes.values()
                ]
        finally:
            pending = self._echo.get(folded, [])
            self._echo[folded] = [(t, f) for t, f in pending if f not in waiters]
            if not self._echo[folded]:
                del self._echo[folded]
        remote_id = ids[0] if ids and ids[0] else None
        self._remember_text(remote_id or f"mx:{msg.event_id}", text)
        return MessageResult(remote_id, extra_ids=[i for i in ids[1:] if i])

    def _remember_text(self: IRCClient, remote_id: str, text: str) -> None:
        self._sent_text[remote_id] = text
        while len(self._sent_text) > 256:
            self._sent_text.popitem(last=False)

    async def handle_matrix_edit(self: IRCClient, edit: MatrixEdit) -> MessageResult | None:
        self.touch()
        fmt = self.server.edit_format
        target = self.target_for(edit.portal)
        if not fmt or target is None:
            return None
        new = await self.render(edit)
        old = self._sent_text.get(edit.target_id)
        text = fmt.replace("{diff}", short_diff(old, new)).replace("{text}", new)
        chunks = split_message(text, self._payload(target, "PRIVMSG", False))
        chunks = chunks[: self.server.line_limit]
        if not chunks:
            return None
        lines, _ = self._build("PRIVMSG", target, chunks, False, None)
        await self.prepare_channel(edit.portal)
        assert self.conn is not None
        await self.conn.send(*lines)
        self._remember_text(edit.target_id, new)
        return None

    # -- reactions ----------------------------------------------------------------------------

    async def handle_matrix_reaction(
        self: IRCClient, reaction: MatrixReaction
    ) -> MessageResult | None:
        target = self.target_for(reaction.portal)
        conn = self.conn
        if (
            target is None
            or conn is None
            or "message-tags" not in conn.caps
            or reaction.target_id.startswith(_SYNTHETIC_ID)
        ):
            return None
        try:
            line = build_line(
                "TAGMSG",
                target,
                tags={"+draft/react": reaction.key, "+draft/reply": reaction.target_id},
            )
        except LineError:
            return None
        await conn.send(line)
        return None

    async def handle_matrix_reaction_remove(self: IRCClient, removal: MatrixReactionRemove) -> None:
        return None  # IRC has no way to take a reaction back

    # -- typing --------------------------------------------------------------------------------

    async def handle_matrix_typing(self: IRCClient, typing: MatrixTyping) -> None:
        """Matrix typing -> ``@+typing=active|done TAGMSG``, where the server has message-tags.

        Matrix says "typing" once; IRC receivers forget it after 6 s, so ``active`` is repeated
        every :data:`TYPING_INTERVAL` seconds until the user stops (or :data:`TYPING_MAX`).
        """
        target = self.target_for(typing.portal)
        if target is None:
            return
        folded = self.fold(target)
        task = self._typing.pop(folded, None)
        if task is not None:
            task.cancel()
        if typing.typing:
            self._typing[folded] = asyncio.ensure_future(self._keep_typing(target, folded))
        elif task is not None and not task.done():  # done: TYPING_MAX said "done" already
            self._send_typing(target, "done")

    async def _keep_typing(self: IRCClient, target: str, folded: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < TYPING_MAX:
            wait = self._typing_sent.get(folded, 0.0) + TYPING_INTERVAL - loop.time()
            if wait > 0:  # typing stopped and started again quickly: keep the 3 s pace
                await asyncio.sleep(wait)
            self._send_typing(target, "active")
            self._typing_sent[folded] = loop.time()
            await asyncio.sleep(TYPING_INTERVAL)
        if self._typing.get(folded) is asyncio.current_task():
            del self._typing[folded]
            self._send_typing(target, "done")

    def _send_typing(self: IRCClient, target: str, state: str) -> None:
        """Best effort: skipped while disconnected (it would be stale after a reconnect) and
        where the server has no message-tags (plain servers do not know TAGMSG)."""
        conn = self.conn
        if conn is None or not conn.ready.is_set() or "message-tags" not in conn.caps:
            return
        if target[:1] in self.chantypes and self.fold(target) not in self.channels:
            return  # not in the channel (yet): the server would refuse it
        try:
            line = build_line("TAGMSG", target, tags={"+typing": state})
        except LineError:
            return
        conn.send(line)

    # -- history -----------------------------------------------------------------------------

    async def fetch_messages(
        self: IRCClient,
        portal: PortalKey,
        anchor: str | None,
        direction: str,
        limit: int,
        cursor: str | None = None,
    ) -> FetchResult:
        """CHATHISTORY AFTER the last bridged msgid, where the server offers it. Forward only:
        IRC servers keep too little for history on portal creation to be worth asking."""
        conn = self.conn
        target = self.target_for(portal)
        after = cursor or anchor
        if (
            direction != FORWARD
            or conn is None
            or target is None
            or "draft/chathistory" not in conn.caps
            or "batch" not in conn.caps
            or not after
            or after.startswith(_SYNTHETIC_ID)
        ):
            return FetchResult()
        folded = self.fold(target)
        joined = folded in self.wanted or folded in self.channels
        if target[0] in self.chantypes and not joined:
            return FetchResult()  # a channel this login is not in: its history is not ours
        asked = min(limit, 100)
        messages = await self.chathistory(target, portal, after, asked)
        return FetchResult(messages, has_more=len(messages) >= asked)
