"""A small async Matrix client-server API (v3) client for integration tests.

Built directly on aiohttp so that tests do not depend on the code under test (mautrix).
The aiohttp session is created lazily, so a client must be used inside a running event loop
(pytest-asyncio uses one loop per test function: create clients inside async tests/fixtures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

_SYNC_FILTER = json.dumps(
    {"room": {"timeline": {"limit": 100}, "state": {"lazy_load_members": False}}}
)


class MatrixError(Exception):
    """A non-2xx response from the homeserver."""

    def __init__(self, status: int, errcode: str, message: str) -> None:
        super().__init__(f"HTTP {status} {errcode}: {message}")
        self.status = status
        self.errcode = errcode
        self.message = message


def _q(value: str) -> str:
    """Percent-encode one path segment."""
    return quote(value, safe="")


class MatrixTestClient:
    """Logged-in Matrix user with helpers for common actions and a background /sync buffer."""

    def __init__(
        self,
        base_url: str,
        user_id: str,
        access_token: str,
        device_id: str | None = None,
        *,
        sync_timeout_ms: int = 5000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.access_token = access_token
        self.device_id = device_id
        self.sync_timeout_ms = sync_timeout_ms
        self._session: aiohttp.ClientSession | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_error: BaseException | None = None
        self._since: str | None = None
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._invites: list[tuple[str, str]] = []
        self._invites_consumed = 0
        #: Rooms whose invite was recorded from the invite section and not yet seen again in
        #: the room's timeline (the same invite shows there once the user joined; the
        #: stripped invite has no event id to tell them apart by).
        self._invited_before: set[str] = set()
        self._changed: asyncio.Condition | None = None
        self._synced_once = False

    # -- construction / lifecycle -------------------------------------------------------------

    @classmethod
    async def login(cls, base_url: str, user: str, password: str) -> MatrixTestClient:
        """Log in with a password (user may be a localpart or full MXID)."""
        async with aiohttp.ClientSession() as session:
            body = {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user},
                "password": password,
            }
            async with session.post(
                f"{base_url.rstrip('/')}/_matrix/client/v3/login", json=body
            ) as resp:
                data = await decode_response(resp)
        return cls(base_url, data["user_id"], data["access_token"], data.get("device_id"))

    async def __aenter__(self) -> MatrixTestClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the sync loop and close the HTTP session."""
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sync_task
            self._sync_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.sync_timeout_ms / 1000 + 30)
            )
        return self._session

    # -- raw API ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Call `/_matrix/client/v3{path}` (or an absolute `/_...` path); raise MatrixError."""
        url = self.base_url + (path if path.startswith("/_") else f"/_matrix/client/v3{path}")
        headers = {"Authorization": f"Bearer {self.access_token}"}
        if body is None and method in ("POST", "PUT"):
            body = {}
        async with self._get_session().request(
            method, url, json=body, params=params, headers=headers
        ) as resp:
            return await decode_response(resp)

    # -- rooms --------------------------------------------------------------------------------

    async def create_room(
        self,
        name: str | None = None,
        invite: list[str] | None = None,
        is_direct: bool = False,
        preset: str = "private_chat",
        room_alias_name: str | None = None,
        **extra: Any,
    ) -> str:
        """Create a room and return its ID; extra keys go into the request body."""
        body: dict[str, Any] = {
            "preset": preset,
            "invite": list(invite or []),
            "is_direct": is_direct,
            **extra,
        }
        if name is not None:
            body["name"] = name
        if room_alias_name is not None:
            body["room_alias_name"] = room_alias_name
        return str((await self.request("POST", "/createRoom", body))["room_id"])

    async def join(self, room_id_or_alias: str) -> str:
        """Join a room by ID or alias and return the room ID."""
        return str((await self.request("POST", f"/join/{_q(room_id_or_alias)}"))["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        """Invite a user to a room."""
        await self.request("POST", f"/rooms/{_q(room_id)}/invite", {"user_id": user_id})

    async def leave(self, room_id: str) -> None:
        """Leave a room."""
        await self.request("POST", f"/rooms/{_q(room_id)}/leave")

    async def resolve_alias(self, alias: str) -> str:
        """Resolve a room alias to a room ID."""
        return str((await self.request("GET", f"/directory/room/{_q(alias)}"))["room_id"])

    async def joined_rooms(self) -> list[str]:
        """Return IDs of the rooms the user is joined to."""
        return list((await self.request("GET", "/joined_rooms"))["joined_rooms"])

    async def joined_members(self, room_id: str) -> dict[str, Any]:
        """Return {user_id: {display_name, avatar_url}} for joined members."""
        return dict((await self.request("GET", f"/rooms/{_q(room_id)}/joined_members"))["joined"])

    # -- events -------------------------------------------------------------------------------

    async def send_message(
        self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message"
    ) -> str:
        """Send a message-like event and return its event ID."""
        path = f"/rooms/{_q(room_id)}/send/{_q(event_type)}/{uuid.uuid4().hex}"
        return str((await self.request("PUT", path, content))["event_id"])

    async def send_text(self, room_id: str, body: str) -> str:
        """Send an m.text message and return its event ID."""
        return await self.send_message(room_id, {"msgtype": "m.text", "body": body})

    async def redact(self, room_id: str, event_id: str, reason: str | None = None) -> str:
        """Redact an event and return the redaction event ID."""
        body = {"reason": reason} if reason is not None else {}
        path = f"/rooms/{_q(room_id)}/redact/{_q(event_id)}/{uuid.uuid4().hex}"
        return str((await self.request("PUT", path, body))["event_id"])

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        """Annotate an event with a reaction key and return the reaction event ID."""
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        return await self.send_message(room_id, content, event_type="m.reaction")

    async def send_state(
        self, room_id: str, type: str, state_key: str, content: dict[str, Any]
    ) -> str:
        """Send a state event and return its event ID."""
        path = f"/rooms/{_q(room_id)}/state/{_q(type)}/{_q(state_key)}"
        return str((await self.request("PUT", path, content))["event_id"])

    async def get_state(self, room_id: str, type: str, state_key: str = "") -> dict[str, Any]:
        """Return the content of a state event (MatrixError 404 if absent)."""
        return await self.request("GET", f"/rooms/{_q(room_id)}/state/{_q(type)}/{_q(state_key)}")

    async def messages(self, room_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """Return up to `limit` most recent timeline events, oldest first."""
        data = await self.request(
            "GET", f"/rooms/{_q(room_id)}/messages", params={"dir": "b", "limit": str(limit)}
        )
        return list(reversed(data.get("chunk", [])))

    # -- profile ------------------------------------------------------------------------------

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        """Return {displayname, avatar_url} of a user."""
        return await self.request("GET", f"/profile/{_q(user_id)}")

    async def set_displayname(self, displayname: str) -> None:
        """Set the user's global display name."""
        path = f"/profile/{_q(self.user_id)}/displayname"
        await self.request("PUT", path, {"displayname": displayname})

    # -- sync-based waiting -------------------------------------------------------------------

    def history(self, room_id: str) -> list[dict[str, Any]]:
        """Events buffered so far by the sync loop for a room (copy, oldest first)."""
        return list(self._history.get(room_id, []))

    def _ensure_sync(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        if self._sync_task is None or self._sync_task.done():
            self._sync_error = None
            self._sync_task = asyncio.get_running_loop().create_task(self._sync_loop())
        return self._changed

    async def _sync_loop(self) -> None:
        assert self._changed is not None
        while True:
            params = {"timeout": str(self.sync_timeout_ms), "filter": _SYNC_FILTER}
            if self._since is not None:
                params["since"] = self._since
            try:
                data = await self.request("GET", "/sync", params=params)
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, OSError):
                await asyncio.sleep(0.5)  # homeserver down/restarting: keep trying
                continue
            except MatrixError as err:
                if err.status in (401, 403):
                    self._sync_error = err
                    async with self._changed:
                        self._changed.notify_all()
                    return
                await asyncio.sleep(0.5)
                continue
            self._since = data.get("next_batch", self._since)
            self._ingest(data.get("rooms", {}))
            self._synced_once = True
            async with self._changed:
                self._changed.notify_all()

    def _ingest(self, rooms: dict[str, Any]) -> None:
        for room_id, room in rooms.get("join", {}).items():
            timeline = room.get("timeline", {}).get("events", [])
            self._append(room_id, timeline)
            # Typing and receipts too (no event ids: each one is kept as it arrives).
            self._append(room_id, room.get("ephemeral", {}).get("events", []))
            # Invited and joined before a sync showed the invite (a bridge's double puppet
            # joins its user right after the invite): the room comes as joined, the invite
            # only in its timeline, and it is an invite all the same.
            inviter = self._own_invite(timeline)
            if inviter and room_id in self._invited_before:
                self._invited_before.discard(room_id)  # the one recorded, now accepted
            elif inviter:
                self._invites.append((room_id, inviter))
        for room_id, room in rooms.get("leave", {}).items():
            self._append(room_id, room.get("timeline", {}).get("events", []))
        for room_id, room in rooms.get("invite", {}).items():
            events = room.get("invite_state", {}).get("events", [])
            self._append(room_id, events, stripped=True)
            inviter = self._own_invite(events)
            if inviter:
                self._invites.append((room_id, inviter))
                self._invited_before.add(room_id)

    def _own_invite(self, events: list[dict[str, Any]]) -> str:
        """The sender of this user's invite among ``events`` ("" if there is none)."""
        for ev in events:
            if (
                ev.get("type") == "m.room.member"
                and ev.get("state_key") == self.user_id
                and ev.get("content", {}).get("membership") == "invite"
            ):
                return str(ev.get("sender", "")) or "?"
        return ""

    def _append(self, room_id: str, events: list[dict[str, Any]], stripped: bool = False) -> None:
        buf = self._history.setdefault(room_id, [])
        seen = {ev.get("event_id") for ev in buf if ev.get("event_id")}
        for ev in events:
            if ev.get("event_id") and ev["event_id"] in seen:
                continue
            ev = dict(ev, room_id=room_id)
            if stripped:
                ev["_stripped_invite_state"] = True
            buf.append(ev)

    def _find(
        self, room_id: str | None, predicate: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        rooms = [room_id] if room_id is not None else list(self._history)
        for rid in rooms:
            for ev in self._history.get(rid, []):
                if predicate(ev):
                    return ev
        return None

    async def wait_for_event(
        self,
        room_id: str | None,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 15,  # noqa: ASYNC109 - part of the harness API
    ) -> dict[str, Any]:
        """Return the first buffered or future sync event (in room_id, or any room) matching.

        Events get a `room_id` key. Raises TimeoutError with a summary of the buffer.
        """
        cond = self._ensure_sync()
        try:
            async with asyncio.timeout(timeout):
                async with cond:
                    while True:
                        if self._synced_once:
                            found = self._find(room_id, predicate)
                            if found is not None:
                                return found
                        if self._sync_error is not None:
                            raise self._sync_error
                        await cond.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{self.user_id}: no matching event in {room_id or 'any room'} after {timeout}s;"
                f" buffered: {self._summary(room_id)}"
            ) from None

    async def wait_for_invite(
        self,
        timeout: float = 15,  # noqa: ASYNC109
        *,
        spaces: bool = False,
    ) -> tuple[str, str]:
        """Return (room_id, inviter) of the next invite not yet returned by this method,
        also one the user has already accepted (joined by a double puppet before the sync
        saw the invite: see ``_ingest``). Invites to spaces are skipped unless ``spaces``:
        the bridge sends them in the background, in no fixed order with the portal invites a
        test waits for."""
        cond = self._ensure_sync()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    async with cond:
                        while self._invites_consumed >= len(self._invites):
                            if self._sync_error is not None:
                                raise self._sync_error
                            await cond.wait()
                    invite = self._invites[self._invites_consumed]
                    self._invites_consumed += 1
                    if spaces or not self._is_space(invite[0]):
                        return invite
        except TimeoutError:
            raise TimeoutError(f"{self.user_id}: no invite after {timeout}s") from None

    def _is_space(self, room_id: str) -> bool:
        return any(
            e.get("type") == "m.room.create" and e.get("content", {}).get("type") == "m.space"
            for e in self._history.get(room_id, [])
        )

    def _summary(self, room_id: str | None, limit: int = 20) -> str:
        rooms = [room_id] if room_id is not None else list(self._history)
        events = [ev for rid in rooms for ev in self._history.get(rid, [])][-limit:]
        return json.dumps(
            [
                {k: ev.get(k) for k in ("room_id", "type", "sender", "state_key", "content")}
                for ev in events
            ]
        )[:4000]


async def decode_response(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """Return the JSON body of a response or raise MatrixError."""
    text = await resp.text()
    try:
        data: Any = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if resp.status >= 300:
        errcode = data.get("errcode", "M_UNKNOWN") if isinstance(data, dict) else "M_UNKNOWN"
        message = data.get("error", text[:500]) if isinstance(data, dict) else text[:500]
        raise MatrixError(resp.status, str(errcode), str(message))
    return data if isinstance(data, dict) else {"value": data}
