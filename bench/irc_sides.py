"""The parties of bench/irc.py: the bridge as a process, an IRC user as a raw protocol, a
Matrix user through the client-server API, and the markers that identify each message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.harness and tests.irc.e2e are not installed packages
sys.path.insert(0, str(REPO / "bench"))

from _stats import proc_cpu  # noqa: E402

CHANNEL = "#bench"
IRC_NICK = "benchbob"
MATRIX_USER = "bench"
MARKER_RE = re.compile(r"BK([IM])(\d{7})")
FILLER = "the quick brown fox jumps over the lazy dog"


def now() -> float:
    return time.perf_counter()


def text_for(kind: str, seq: int) -> str:
    return f"BK{kind}{seq:07d} {FILLER} {seq}"


# -- processes --------------------------------------------------------------------------------


def proc_status(pid: int, key: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM...)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_nofile(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as fh:
        for line in fh:
            if line.startswith("Max open files"):
                return "/".join(line.split()[3:5])
    return "?"


#: ``--profile FILE``: the bridge runs under cProfile (slower; for call counts, not figures).
PROFILE_ARGS: list[str] = []
#: ``--bridge-python``: the interpreter that runs the bridge (default: this one).
BRIDGE_PYTHON: list[str] = [sys.executable]


class BridgeProcess:
    """``python -m bridgekit run -c config.yaml`` with its metrics/status listener."""

    def __init__(self, workdir: Path, config_path: Path, metrics_port: int) -> None:
        self.workdir = workdir
        self.config_path = config_path
        self.metrics_port = metrics_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "bridge.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        config = str(self.config_path)
        return [*BRIDGE_PYTHON, *PROFILE_ARGS, "-m", "bridgekit", "run", "-c", config]

    def env(self) -> dict[str, str] | None:
        return None  # ours: inherit

    def start(self) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    async def get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            resp.raise_for_status()
            return await (resp.json() if path == "/status" else resp.text())

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = now() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited ({self.proc.returncode}); see {self.log_path}")
            try:
                await self.get("/status")
                return
            except (aiohttp.ClientError, OSError):
                if now() > deadline:
                    raise RuntimeError(f"bridge not ready; see {self.log_path}") from None
                await asyncio.sleep(0.1)

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def rss_kib(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def stop(self, timeout: float = 120) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def raise_nofile() -> tuple[int, int]:
    """Soft fd limit to the hard limit; the bridge and the ircd inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# -- raw IRC client ---------------------------------------------------------------------------


class RawIrc(asyncio.Protocol):
    """An IRC user as a bare protocol: every line timestamped the moment it is read."""

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiters: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.expect: dict[int, asyncio.Future[float]] = {}
        self.lines: list[Any] = []
        self.keep_lines = True
        self.puppet_joins: list[str] = []  # the Matrix user's puppet joining, in order
        self.scale_joins = 0  # other bridged users (the --fanout ones) joining

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        from bridges.irc.lines import ParseError, build_line, parse_line

        stamp = now()
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                return
            raw = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            try:
                msg = parse_line(raw)
            except ParseError:
                continue
            if msg.command == "PING" and self.transport is not None:
                self.transport.write(build_line("PONG", *msg.params[:1]))
                continue
            if msg.command == "PRIVMSG" and len(msg.params) == 2:
                m = MARKER_RE.match(msg.params[1])
                if m and m.group(1) == "M":
                    seq = int(m.group(2))
                    self.order.append(seq)
                    self.arrivals.setdefault(seq, stamp)
                    fut = self.expect.pop(seq, None)
                    if fut is not None and not fut.done():
                        fut.set_result(stamp)
                    continue
            if msg.command == "JOIN" and (msg.nick or "").endswith("[m]"):
                if msg.nick.lower().startswith(MATRIX_USER):
                    self.puppet_joins.append(msg.nick)
                else:
                    self.scale_joins += 1
            if self.keep_lines:
                self.lines.append(msg)
            for pred, fut in list(self.waiters):
                if not fut.done() and pred(msg):
                    fut.set_result(msg)
            self.waiters = [(p, f) for p, f in self.waiters if not f.done()]

    def connection_lost(self, exc: Exception | None) -> None:
        for _, fut in self.waiters:
            if not fut.done():
                fut.set_exception(ConnectionError("IRC connection closed"))

    def send(self, command: str, *params: str) -> None:
        from bridges.irc.lines import build_line

        assert self.transport is not None
        self.transport.write(build_line(command, *params))

    async def wait_for(self, pred: Callable[[Any], bool], timeout: float = 30) -> Any:
        for msg in self.lines:
            if pred(msg):
                self.lines.remove(msg)
                return msg
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters.append((pred, fut))
        return await asyncio.wait_for(fut, timeout)

    async def connect(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, host, port)
        self.send("NICK", self.nick)
        self.send("USER", self.nick, "0", "*", self.nick)
        welcome = await self.wait_for(lambda m: m.command in ("001", "433", "ERROR"), 10)
        if welcome.command != "001":
            raise ConnectionError(f"IRC registration failed: {welcome.command} {welcome.params}")
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    async def join(self, channel: str) -> None:
        self.send("JOIN", channel)
        await self.wait_for(lambda m: m.command == "366", 10)

    async def user_count(self) -> int:
        """Users on the server (LUSERS 266 "Current global users")."""
        self.lines.clear()
        self.send("LUSERS")
        reply = await self.wait_for(lambda m: m.command == "266", 10)
        for param in reply.params[1:]:
            if param.isdigit():
                return int(param)
        found = re.search(r"(\d+)", reply.trailing or "")
        return int(found.group(1)) if found else 0


# -- Matrix side ------------------------------------------------------------------------------


class MatrixSide:
    """The Matrix user: sends with ``PUT /send``, reads the portal room with its own /sync."""

    def __init__(self, base_url: str, user_id: str, token: str) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.token = token
        self.session: aiohttp.ClientSession | None = None
        self.room_id = ""
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.own_order: list[int] = []  # our Matrix->IRC messages, in timeline order
        #: More rooms read by the same /sync (bench/slack.py's channels); markers per room.
        self.rooms: list[str] = []
        self.order_by_room: dict[str, list[int]] = {}
        self.expect: dict[int, asyncio.Future[float]] = {}
        self.limited = 0
        self._task: asyncio.Task[None] | None = None
        self._txn = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self, room_id: str, more_rooms: list[str] | None = None) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=120)
        )
        self.room_id = room_id
        self.rooms = [room_id, *(more_rooms or [])]
        since = await self._sync(None, 0)
        self._task = asyncio.create_task(self._loop(since))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.session is not None:
            await self.session.close()

    async def _sync(self, since: str | None, timeout_ms: int) -> str:
        assert self.session is not None
        flt = {
            "room": {
                "rooms": self.rooms,
                "timeline": {"limit": 1000, "types": ["m.room.message"]},
                "state": {"types": []},
                "ephemeral": {"types": []},
                "account_data": {"types": []},
            },
            "presence": {"types": []},
            "account_data": {"types": []},
        }
        params = {"timeout": str(timeout_ms), "filter": json.dumps(flt)}
        if since:
            params["since"] = since
        url = f"{self.base_url}/_matrix/client/v3/sync"
        async with self.session.get(url, params=params, headers=self.headers) as resp:
            body = await resp.read()
            stamp = now()
            if resp.status != 200:
                raise RuntimeError(f"/sync: {resp.status} {body[:200]!r}")
        data = json.loads(body)
        joined = data.get("rooms", {}).get("join", {})
        for room_id in self.rooms:
            if room_id in joined:
                self._timeline(room_id, joined[room_id].get("timeline", {}), since, stamp)
        return str(data["next_batch"])

    def _timeline(
        self, room_id: str, timeline: dict[str, Any], since: str | None, stamp: float
    ) -> None:
        if since is None:
            return
        if timeline.get("limited"):
            self.limited += 1
        for evt in timeline.get("events", []):
            body_text = evt.get("content", {}).get("body")
            if not isinstance(body_text, str):
                continue
            # Every marker of the body: the runtime may merge consecutive lines of one
            # sender into one event ("\n"-separated) while the room is backed up.
            for m in MARKER_RE.finditer(body_text):
                seq = int(m.group(2))
                if m.group(1) == "M":
                    self.own_order.append(seq)
                    continue
                self.order.append(seq)
                self.order_by_room.setdefault(room_id, []).append(seq)
                self.arrivals.setdefault(seq, stamp)
                fut = self.expect.pop(seq, None)
                if fut is not None and not fut.done():
                    fut.set_result(stamp)

    async def _loop(self, since: str) -> None:
        while True:
            try:
                since = await self._sync(since, 30000)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.2)

    async def send(self, text: str) -> float:
        """PUT one m.text; returns when Synapse answered (the send's own latency)."""
        assert self.session is not None
        self._txn += 1
        url = (
            f"{self.base_url}/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}"
            f"/send/m.room.message/bench{os.getpid()}-{self._txn}"
        )
        start = now()
        body = {"msgtype": "m.text", "body": text}
        for attempt in range(5):
            async with self.session.put(url, json=body, headers=self.headers) as resp:
                await resp.read()
                if resp.status == 200:
                    return now() - start
                if attempt == 4:
                    raise RuntimeError(f"/send: {resp.status}")
            await asyncio.sleep(0.2)
        return now() - start

    async def history(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` m.room.message events of the room, oldest first."""
        assert self.session is not None
        events: list[dict[str, Any]] = []
        token: str | None = None
        url = f"{self.base_url}/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/messages"
        while len(events) < limit:
            params = {
                "dir": "b",
                "limit": str(min(1000, limit - len(events))),
                "filter": json.dumps({"types": ["m.room.message"]}),
            }
            if token:
                params["from"] = token
            async with self.session.get(url, params=params, headers=self.headers) as resp:
                data = await resp.json()
            chunk = data.get("chunk", [])
            events.extend(chunk)
            token = data.get("end")
            if not chunk or not token:
                break
        return list(reversed(events))


def markers_in(events: list[dict[str, Any]], kind: str) -> list[int]:
    """The ``kind`` markers in the events' bodies, in order (several per merged event)."""
    out = []
    for evt in events:
        body = evt.get("content", {}).get("body")
        if isinstance(body, str):
            out.extend(int(m.group(2)) for m in MARKER_RE.finditer(body) if m.group(1) == kind)
    return out


def events_carrying(events: list[dict[str, Any]], kind: str, seqs: list[int]) -> int:
    """How many events hold at least one of ``seqs`` (fewer than messages when merged)."""
    wanted = set(seqs)
    return sum(
        1
        for evt in events
        if isinstance(body := evt.get("content", {}).get("body"), str)
        and any(m.group(1) == kind and int(m.group(2)) in wanted for m in MARKER_RE.finditer(body))
    )
