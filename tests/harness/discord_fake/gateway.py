"""The gateway websocket at ``/gateway``: HELLO, heartbeats and their ACKs, IDENTIFY -> READY
and one GUILD_CREATE per guild, RESUME (the missed dispatches replayed, then RESUMED),
GUILD_MEMBERS_CHUNK for op 8; sessions with sequence numbers that outlive their socket (a
dispatch while a session is disconnected waits in its buffer for a RESUME); dispatches filtered
by who may see them and by intents (no MESSAGE_CONTENT: empty content, embeds, attachments);
and the gateway's faults (close codes, storms, op 7, op 9, withheld ACKs, refused tokens)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .app_flags import application_flags, intents_allowed
from .models import (
    INTENT_DIRECT_MESSAGE_REACTIONS,
    INTENT_DIRECT_MESSAGE_TYPING,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGE_TYPING,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILD_WEBHOOKS,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    Channel,
    Guild,
    Message,
    User,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

# close codes after which Discord does not let the session resume
NOT_RESUMABLE = {4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014}

_GUILD_INTENT = {
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE_BULK": INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE_ALL": INTENT_GUILD_MESSAGE_REACTIONS,
    "TYPING_START": INTENT_GUILD_MESSAGE_TYPING,
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": INTENT_GUILD_MEMBERS,
    "WEBHOOKS_UPDATE": INTENT_GUILD_WEBHOOKS,
}
_DM_INTENT = {
    "MESSAGE_CREATE": INTENT_DIRECT_MESSAGES,
    "MESSAGE_UPDATE": INTENT_DIRECT_MESSAGES,
    "MESSAGE_DELETE": INTENT_DIRECT_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_DIRECT_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_DIRECT_MESSAGE_REACTIONS,
    "TYPING_START": INTENT_DIRECT_MESSAGE_TYPING,
}


@dataclass
class Session:
    """A gateway session: it outlives its socket until it is invalidated."""

    id: str
    user_id: str
    token: str
    intents: int
    seq: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)  # every dispatch sent, by seq
    ws: web.WebSocketResponse | None = None
    queue: asyncio.Queue[Any] | None = None
    resumable: bool = True
    closed_with: int | None = None

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed


class Gateway:
    """The websocket handler and dispatching (``self`` is the ``FakeDiscord``)."""

    async def _gateway(self: FakeDiscord, request: web.Request) -> web.StreamResponse:
        self.gateway_connects.append(dict(request.query))
        if self._outage:
            return web.json_response({"message": "Service Unavailable"}, status=503)
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        writer = self._spawn(self._writer(ws, queue))
        session: Session | None = None
        try:
            queue.put_nowait({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(frame.data)
                    op = payload["op"]
                except (ValueError, KeyError, TypeError):
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                self.gateway_frames.append(payload if op != 2 and op != 6 else {"op": op})
                if op == 1:
                    if not self.withhold_heartbeat_ack:
                        queue.put_nowait({"op": 11})
                elif op == 2:
                    if session is not None:
                        await ws.close(code=4005, message=b"Already authenticated.")
                        break
                    session = await self._identify(ws, queue, payload.get("d") or {})
                elif op == 6:
                    session = await self._resume(ws, queue, payload.get("d") or {})
                elif op == 8 and session is not None:
                    self._members_chunk(session, payload.get("d") or {})
                elif op in (3, 4):
                    pass  # presence and voice state updates: accepted, not modelled
                elif session is None:
                    await ws.close(code=4003, message=b"Not authenticated.")
                    break
        finally:
            queue.put_nowait(None)
            await asyncio.gather(writer, return_exceptions=True)
            self._sockets.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
                session.queue = None
                server_code = self._server_closes.pop(id(ws), None)
                if server_code is not None:
                    if server_code in NOT_RESUMABLE:
                        session.resumable = False
                elif ws.close_code in (1000, 1001):
                    session.resumable = False  # the client ended its session
            self._server_closes.pop(id(ws), None)
        return ws

    async def _writer(
        self: FakeDiscord, ws: web.WebSocketResponse, queue: asyncio.Queue[Any]
    ) -> None:
        """Sends a socket's frames in order; a future in the queue is set once the frames
        before it were written (``echo_before_reply``); a ``("close", code)`` closes."""
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, asyncio.Future):
                if not item.done():
                    item.set_result(None)
                continue
            if isinstance(item, tuple):
                self._server_closes[id(ws)] = item[1]
                with contextlib.suppress(Exception):
                    await ws.close(code=item[1], message=item[2].encode())
                continue
            if ws.closed:
                continue
            try:
                await ws.send_str(item if isinstance(item, str) else json.dumps(item))
            except (ConnectionError, RuntimeError):
                continue

    def _intents_ok(self: FakeDiscord, user: User, intents: int) -> bool:
        return intents_allowed(user, intents)

    async def _identify(
        self: FakeDiscord, ws: web.WebSocketResponse, queue: asyncio.Queue[Any], d: dict[str, Any]
    ) -> Session | None:
        self.identify_count += 1
        token = str(d.get("token") or "")
        if token.startswith("Bot "):
            token = token[4:]
        user = self._user_for_token(token)
        if user is None:
            queue.put_nowait(("close", 4004, "Authentication failed."))
            return None
        intents = int(d.get("intents") or 0)
        if user.bot and not self._intents_ok(user, intents):
            queue.put_nowait(("close", 4014, "Disallowed intent(s)."))
            return None
        if not user.bot:
            intents = (1 << 26) - 1  # user accounts have no intents: they get everything
        session = Session(
            id=secrets.token_hex(16),
            user_id=user.id,
            token=token,
            intents=intents,
            ws=ws,
            queue=queue,
        )
        self.sessions.append(session)
        guilds = [g for g in self.guilds.values() if user.id in g.members]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.user_json(user) | {"verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "private_channels": [
                self.channel_json(c)
                for c in self.channels.values()
                if c.is_dm and user.id in c.recipients
            ]
            if not user.bot
            else [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": ["fake-discord"],
        }
        if user.bot:
            ready["application"] = {"id": user.application_id, "flags": application_flags(user)}
        self._send(session, "READY", ready)
        for guild in guilds:
            self._send(session, "GUILD_CREATE", self.guild_create_json(guild, user))
        if self._storm is not None:
            # a stormed session cannot resume either (op 9): the client IDENTIFYs again
            await self._flush(session)
            session.resumable = False
            queue.put_nowait(("close", self._storm, "Storm."))
        return session

    async def _resume(
        self: FakeDiscord, ws: web.WebSocketResponse, queue: asyncio.Queue[Any], d: dict[str, Any]
    ) -> Session | None:
        self.resume_count += 1
        token = str(d.get("token") or "")
        if token.startswith("Bot "):
            token = token[4:]
        session = next((s for s in self.sessions if s.id == d.get("session_id")), None)
        if self._user_for_token(token) is None:
            queue.put_nowait(("close", 4004, "Authentication failed."))
            return None
        if session is None or not session.resumable or session.token != token:
            queue.put_nowait({"op": 9, "d": False})
            return None
        if session.connected and session.ws is not ws:
            session.queue.put_nowait(("close", 4000, "Session resumed elsewhere."))  # type: ignore[union-attr]
        session.ws = ws
        session.queue = queue
        after = int(d.get("seq") or 0)
        for frame in session.buffer:
            if frame["s"] > after:
                queue.put_nowait(frame)
        self._send(session, "RESUMED", {"_trace": ["fake-discord"]})
        return session

    def _members_chunk(self: FakeDiscord, session: Session, d: dict[str, Any]) -> None:
        guild = self.guilds.get(str(d.get("guild_id")))
        if guild is None or session.user_id not in guild.members:
            return
        wanted = {str(u) for u in d.get("user_ids") or []}
        query = str(d.get("query") or "").lower()
        members = [
            m
            for m in guild.members.values()
            if (not wanted or m.user_id in wanted)
            and self.users[m.user_id].username.lower().startswith(query)
        ]
        if d.get("limit"):
            members = members[: int(d["limit"])]
        data: dict[str, Any] = {
            "guild_id": guild.id,
            "members": [self.member_json(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": sorted(wanted - {m.user_id for m in members}),
        }
        if d.get("nonce") is not None:
            data["nonce"] = d["nonce"]
        self._send(session, "GUILD_MEMBERS_CHUNK", data)

    # --- sending and dispatching ------------------------------------------------------------

    def _send(self: FakeDiscord, session: Session, t: str, d: Any) -> None:
        session.seq += 1
        frame = {"op": 0, "t": t, "s": session.seq, "d": d}
        session.buffer.append(frame)
        self.dispatched.append((session.id, t, d))
        if session.queue is not None:
            session.queue.put_nowait(frame)

    async def _flush(self: FakeDiscord, session: Session) -> None:
        if session.queue is None:
            return
        done = asyncio.get_running_loop().create_future()
        session.queue.put_nowait(done)
        await asyncio.wait_for(done, 30)

    async def flush_gateway(self: FakeDiscord) -> None:
        """Waits until every frame queued so far was written to its socket."""
        await asyncio.gather(*(self._flush(s) for s in self.sessions if s.connected))

    def _live_sessions(self: FakeDiscord) -> list[Session]:
        return [s for s in self.sessions if s.resumable]

    def _dispatch_filtered(self: FakeDiscord, t: str, build: Any, who: Any) -> None:
        """Sends ``build(session)`` (None: nothing) to every live session ``who`` accepts."""
        if self.gateway_paused:
            self.lost_dispatches.append(t)
            return
        for session in self._live_sessions():
            if not who(session):
                continue
            d = build(session)
            if d is not None:
                self._send(session, t, d)

    def _has_intent(self, session: Session, t: str, guild: bool) -> bool:
        table = _GUILD_INTENT if guild else _DM_INTENT
        needed = table.get(t, INTENT_GUILDS if guild else 0)
        return not needed or bool(session.intents & needed)

    def dispatch_channel(
        self: FakeDiscord, channel: Channel, t: str, d: Any, *, exclude_user: str | None = None
    ) -> None:
        """A dispatch about ``channel`` to the sessions whose user can see it."""
        self._dispatch_filtered(
            t,
            lambda s: d,
            lambda s: (
                s.user_id != exclude_user
                and self._sees(s.user_id, channel)
                and self._has_intent(s, t, channel.guild_id is not None)
            ),
        )

    def dispatch_message(
        self: FakeDiscord, t: str, msg: Message, extra: dict[str, Any] | None = None
    ) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE; content emptied without MESSAGE_CONTENT, except in
        DMs, for the author's own messages and messages that mention the session's user."""
        channel = self.channels[msg.channel_id]
        guild = channel.guild_id is not None

        def build(session: Session) -> dict[str, Any]:
            content = (
                not guild
                or bool(session.intents & INTENT_MESSAGE_CONTENT)
                or msg.author_id == session.user_id
                or session.user_id in msg.mentions
            )
            data = self.message_json(msg, content=content)
            if extra:
                data.update(extra)
            return data

        self._dispatch_filtered(
            t, build, lambda s: self._sees(s.user_id, channel) and self._has_intent(s, t, guild)
        )

    def dispatch_guild(
        self: FakeDiscord, guild_id: str, t: str, d: Any, *, exclude_user: str | None = None
    ) -> None:
        """A guild-wide dispatch to sessions of the guild's members (intents honoured)."""
        guild = self.guilds[guild_id]
        self._dispatch_filtered(
            t,
            lambda s: d,
            lambda s: (
                s.user_id in guild.members
                and s.user_id != exclude_user
                and self._has_intent(s, t, True)
            ),
        )

    def dispatch_to_user(self: FakeDiscord, user_id: str, t: str, d: Any) -> None:
        self._dispatch_filtered(t, lambda s: d, lambda s: s.user_id == user_id)

    def guild_joined(self: FakeDiscord, guild: Guild, user_id: str) -> None:
        self._dispatch_filtered(
            "GUILD_CREATE",
            lambda s: self.guild_create_json(guild, self.users[user_id]),
            lambda s: s.user_id == user_id,
        )

    def _sees(self: FakeDiscord, user_id: str, channel: Channel) -> bool:
        if channel.is_dm:
            return user_id in channel.recipients
        return self.can_view(user_id, channel)

    # --- faults -----------------------------------------------------------------------------

    async def close_sessions(self: FakeDiscord, code: int = 4000, reason: str = "") -> None:
        """Closes every gateway socket with ``code`` (4004/4014/... end the session)."""
        for session in self.sessions:
            if session.connected:
                session.closed_with = code
                if code in NOT_RESUMABLE:
                    session.resumable = False
                session.queue.put_nowait(("close", code, reason or f"closed {code}"))  # type: ignore[union-attr]
        for ws in list(self._sockets):  # sockets that never identified
            if not any(s.ws is ws for s in self.sessions):
                await ws.close(code=code)

    def storm(self: FakeDiscord, code: int | None = 4002, after: str = "GUILD_CREATE") -> None:
        """Every new session is closed with ``code`` right after its GUILD_CREATEs, until
        ``storm(None)``."""
        if after != "GUILD_CREATE":
            raise ValueError("only after='GUILD_CREATE' is modelled")
        self._storm = code

    def clear_storm(self: FakeDiscord) -> None:
        self._storm = None

    async def send_reconnect(self: FakeDiscord) -> None:
        """Op 7 RECONNECT to every connected session (the client should RESUME)."""
        for session in self.sessions:
            if session.connected:
                session.queue.put_nowait({"op": 7, "d": None})  # type: ignore[union-attr]
        await self.flush_gateway()

    async def invalidate_session(self: FakeDiscord, resumable: bool = False) -> None:
        """Op 9 to every connected session; not resumable: they must IDENTIFY again."""
        for session in self.sessions:
            if session.connected:
                if not resumable:
                    session.resumable = False
                session.queue.put_nowait({"op": 9, "d": resumable})  # type: ignore[union-attr]
        await self.flush_gateway()

    def send_raw_dispatch(self: FakeDiscord, t: str, d: Any, *, user: Any = None) -> None:
        """Any dispatch (malformed ones too) to every connected session (or ``user``'s)."""
        for session in self._live_sessions():
            if user is None or session.user_id == str(getattr(user, "id", user)):
                self._send(session, t, d)

    def send_raw_frame(self: FakeDiscord, frame: str) -> None:
        """Any text (not even JSON) on every connected socket."""
        for session in self.sessions:
            if session.connected:
                session.queue.put_nowait(frame)  # type: ignore[union-attr]

    @contextlib.asynccontextmanager
    async def gateway_outage(self: FakeDiscord) -> AsyncIterator[None]:
        """Every session ends (4000 then not resumable: what happens in the outage reaches no
        gateway, only ``GET /channels/{id}/messages``); new sockets get 503 until the end."""
        self._outage = True
        for session in self.sessions:
            session.resumable = False
        await self.close_sessions(4000)
        try:
            yield
        finally:
            self._outage = False

    def sessions_of(self: FakeDiscord, user: Any) -> list[Session]:
        uid = str(getattr(user, "id", user))
        return [s for s in self.sessions if s.user_id == uid]

    @property
    def connected_sessions(self: FakeDiscord) -> list[Session]:
        return [s for s in self.sessions if s.connected]
