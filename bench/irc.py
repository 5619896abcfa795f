"""Benchmark of the IRC connector end to end: a real Synapse, a real InspIRCd, the bridge alone.

    .venv/bin/python bench/irc.py                 # latency, throughput, CPU, 1,000 puppets
    .venv/bin/python bench/irc.py --scale 10000   # 10,000 puppeted connections
    .venv/bin/python bench/irc.py --json          # machine-readable results

The bridge runs as ``python -m bridgekit run -c config.yaml`` in a process of its own, so its CPU
time and RSS are read from /proc/<pid>. InspIRCd runs without flood control and the connector's
per-connection send rate is raised (``--send-rate``) so that the bridge is what is measured.

* **End to end.** IRC->Matrix: a raw IRC client writes ``PRIVMSG`` -> a Matrix client's /sync
  returns the event. Matrix->IRC: the Matrix client's ``PUT /send`` starts -> the raw IRC client
  reads the line. One message at a time (``--single``), a sustained rate (``--rate`` for
  ``--seconds``) and a burst sent all at once (``--burst``).
* **Bridge-added latency.** A packet capture on ``lo`` (AF_PACKET with a BPF filter, in a child
  process; kernel timestamps) sees each message enter and leave the bridge: IRC->Matrix from the
  ircd's packet carrying the line to the bridge's ``PUT .../send`` to Synapse; Matrix->IRC from
  Synapse's ``PUT /transactions`` to the bridge's ``PRIVMSG`` to the ircd. Nothing is added to
  the path. Under load, "bridge-added" includes waiting behind the previous message of the same
  room (the bridge sends one event per room at a time, for order); "bridge service" excludes
  that wait: it starts when the bridge had both the line and Synapse's answer to the previous
  send. Without CAP_NET_RAW only the Prometheus histogram ``bridgekit_handling_seconds`` is shown.
* **Completeness and order** are checked against the room history (``/messages``) and the
  lines the IRC client read, never just against arrival callbacks.
* **Scale.** ``--scale N`` stored logins of N Matrix users are loaded by a fresh bridge process
  exactly as after a restart (``Bridge.start`` -> ``IRCConnector.load_login`` -> ``IRCClient``
  -> ``IRCConnection``: registration with CAP negotiation, staggered by the connector's
  ``reconnect.rate`` starts per second and ``reconnect.concurrency`` registrations in
  flight). RSS per connection is (RSS with N+1 logins - RSS of a fresh process with the 1
  login of the latency phases) / N, both measured once every connection is registered and
  the process has settled.

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.harness and tests.irc.e2e are not installed packages
sys.path.insert(0, str(REPO / "bench"))

from _stats import order_check, proc_cpu, summary_ms  # noqa: E402

CHANNEL = "#bench"
IRC_NICK = "benchbob"
MATRIX_USER = "bench"
MARKER_RE = re.compile(r"BK([IM])(\d{7})")
MARKER_BYTES_RE = re.compile(rb"BK([IM])(\d{7})")
FILLER = "the quick brown fox jumps over the lazy dog"


def now() -> float:
    return time.perf_counter()


def text_for(kind: str, seq: int) -> str:
    return f"BK{kind}{seq:07d} {FILLER} {seq}"


# -- packet capture (child process) -----------------------------------------------------------

SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def bpf_program(ports: list[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF: outgoing IPv4 TCP packets on lo from or to one of ``ports``."""
    ld_w, ld_h, ld_b, ldx_msh, ld_h_ind, jeq, jset, ret = (
        0x20,
        0x28,
        0x30,
        0xB1,
        0x48,
        0x15,
        0x45,
        0x06,
    )
    body: list[tuple[int, Any, Any, int]] = [
        (ld_w, 0, 0, 0xFFFFF000 + 4),  # SKF_AD_OFF + SKF_AD_PKTTYPE
        (jeq, 0, "drop", PACKET_OUTGOING),  # lo shows each packet twice: keep one copy
        (ld_h, 0, 0, 12),
        (jeq, 0, "drop", 0x0800),
        (ld_b, 0, 0, 23),
        (jeq, 0, "drop", 6),
        (ld_h, 0, 0, 20),
        (jset, "drop", 0, 0x1FFF),
        (ldx_msh, 0, 0, 14),
        (ld_h_ind, 0, 0, 14),
        *[(jeq, "accept", 0, p) for p in ports],
        (ld_h_ind, 0, 0, 16),
        *[(jeq, "accept", 0, p) for p in ports],
    ]
    drop, accept = len(body), len(body) + 1
    out = []
    for i, (code, jt, jf, k) in enumerate(body):
        jt = (
            {"drop": drop, "accept": accept}.get(jt, i + 1) - (i + 1) if isinstance(jt, str) else jt
        )
        jf = (
            {"drop": drop, "accept": accept}.get(jf, i + 1) - (i + 1) if isinstance(jf, str) else jf
        )
        out.append((code, jt, jf, k))
    out += [(ret, 0, 0, 0), (ret, 0, 0, 0x40000)]
    return out


def sniff_main(roles_arg: str) -> None:
    """Child process: first kernel timestamp of every marker per (source role > dest role).

    Roles are named ports (ircd, hs, as, bob); other ports are "x". An HTTP response to a
    request that carried markers is recorded as ``resp>hs`` / ``resp>as`` for those markers.
    Runs until stdin is closed, then prints the JSON and exits.
    """
    roles = {int(p): name for name, p in json.loads(roles_arg).items()}
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    program = bpf_program(sorted(roles))
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in program))
    filtered = True
    try:
        fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        filtered = False
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("lo", 0))
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:  # anything queued before the filter was attached
            sock.recv(65536)
    first: dict[str, float] = {}
    open_requests: dict[tuple[int, int], list[str]] = {}
    packets = 0
    print(json.dumps({"ready": True, "bpf": filtered}), flush=True)
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([sock, stdin], [], [], 1.0)
        if stdin in readable and not os.read(stdin, 4096):
            break
        if sock not in readable:
            continue
        while True:
            try:
                data, anc, _, addr = sock.recvmsg(65536, 64)
            except BlockingIOError:
                break
            if addr[2] != PACKET_OUTGOING or len(data) < 54 or data[12:14] != b"\x08\x00":
                continue
            if data[23] != 6:
                continue
            ihl = (data[14] & 0x0F) * 4
            tcp = 14 + ihl
            sport, dport = struct.unpack_from("!HH", data, tcp)
            src, dst = roles.get(sport), roles.get(dport)
            if src is None and dst is None:
                continue
            payload = data[tcp + (data[tcp + 12] >> 4) * 4 :]
            if not payload:
                continue
            packets += 1
            stamp = 0.0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    stamp = sec + nsec / 1e9
            if dst in ("hs", "as") and src is None:
                tokens = [f"{k.decode()}{s.decode()}" for k, s in MARKER_BYTES_RE.findall(payload)]
                if tokens:
                    open_requests.setdefault((sport, dport), []).extend(tokens)
            elif src in ("hs", "as") and dst is None and payload.startswith(b"HTTP/1."):
                for token in open_requests.pop((dport, sport), []):
                    first.setdefault(f"{token}|resp>{src}", stamp)
            route = f"{src or 'x'}>{dst or 'x'}"
            for k, s in MARKER_BYTES_RE.findall(payload):
                first.setdefault(f"{k.decode()}{s.decode()}|{route}", stamp)
    print(json.dumps({"stamps": first, "packets": packets, "bpf": filtered}), flush=True)


class Sniffer:
    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles
        self.proc: subprocess.Popen[str] | None = None
        self.error: str | None = None
        self.bpf = False

    def start(self) -> bool:
        try:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--sniff", json.dumps(self.roles)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(self.proc.stderr.read() if self.proc.stderr else "no output")
            self.bpf = bool(json.loads(line).get("bpf"))
            return True
        except Exception as e:  # no CAP_NET_RAW, no AF_PACKET...
            self.error = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            self.proc = None
            return False

    def stop(self) -> dict[str, float]:
        if self.proc is None:
            return {}
        out, _ = self.proc.communicate(timeout=60)
        self.proc = None
        data = json.loads(out.strip().splitlines()[-1])
        return {k: float(v) for k, v in data["stamps"].items()}


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
        self.expect: dict[int, asyncio.Future[float]] = {}
        self.limited = 0
        self._task: asyncio.Task[None] | None = None
        self._txn = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def start(self, room_id: str) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200), timeout=aiohttp.ClientTimeout(total=120)
        )
        self.room_id = room_id
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
                "rooms": [self.room_id],
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
        room = data.get("rooms", {}).get("join", {}).get(self.room_id, {})
        timeline = room.get("timeline", {})
        if since is not None:
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
                    self.arrivals.setdefault(seq, stamp)
                    fut = self.expect.pop(seq, None)
                    if fut is not None and not fut.done():
                        fut.set_result(stamp)
        return str(data["next_batch"])

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


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class Env:
    args: argparse.Namespace
    workdir: Path
    ircd: Any
    synapse: Any
    bridge: BridgeProcess
    bridge_env: Any
    db_url: str
    irc_section: dict[str, Any]
    bob: RawIrc = field(default_factory=lambda: RawIrc(IRC_NICK))
    bob_port: int = 0
    matrix: MatrixSide | None = None
    puppet: str = ""
    seq: int = 0
    sniffer: Sniffer | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def procs_cpu(self) -> dict[str, float]:
        cpu = {"bridge": self.bridge.cpu()}
        # The event loop runs in the main thread; SQLite work in aiosqlite's worker threads.
        cpu["bridge_loop"] = proc_cpu(self.bridge.pid, self.bridge.pid)
        cpu["bridge_threads"] = cpu["bridge"] - cpu["bridge_loop"]
        for name, obj, attr in (
            ("synapse", self.synapse, "_proc"),
            ("ircd", self.ircd, "_process"),
        ):
            proc = getattr(obj, attr, None)
            if proc is not None and proc.poll() is None:
                cpu[name] = proc_cpu(proc.pid)
        return cpu


def metrics_histogram(text: str, source: str) -> dict[float, float]:
    """Cumulative bucket counts of bridgekit_handling_seconds{source=...}."""
    out = {}
    pattern = re.compile(
        r'^bridgekit_handling_seconds_bucket\{(?=[^}]*le="([^"]+)")(?=[^}]*source="'
        + re.escape(source)
        + r'")[^}]*\}\s+(\S+)$',
        re.M,
    )
    for le, value in pattern.findall(text):
        out[float("inf") if le == "+Inf" else float(le)] = float(value)
    return out


def histogram_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """p50/p95 (ms, interpolated inside a bucket) of what was observed between two scrapes."""
    edges = sorted(after)
    counts = [after[e] - before.get(e, 0.0) for e in edges]
    total = counts[-1] if counts else 0
    out: dict[str, Any] = {"n": int(total)}
    if not total:
        return out
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        target = q * total
        prev_edge, prev_count = 0.0, 0.0
        for edge, count in zip(edges, counts, strict=True):
            if count >= target:
                if edge == float("inf"):
                    out[name] = f">{prev_edge * 1000:g}"
                else:
                    frac = (target - prev_count) / max(count - prev_count, 1e-9)
                    out[name] = round((prev_edge + (edge - prev_edge) * frac) * 1000, 2)
                break
            prev_edge, prev_count = edge, count
    return out


async def scrape(env: Env) -> str:
    try:
        return str(await env.bridge.get("/metrics"))
    except Exception:
        return ""


def bridge_stamps(
    stamps: dict[str, float], kind: str, seqs: list[int]
) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """(bridge-added, bridge service, other legs) in seconds, from the capture."""
    added: list[float] = []
    service: list[float] = []
    legs: dict[str, list[float]] = {}

    def t(seq: int, route: str) -> float | None:
        return stamps.get(f"{kind}{seq:07d}|{route}")

    def leg(name: str, a: float | None, b: float | None) -> None:
        if a is not None and b is not None:
            legs.setdefault(name, []).append(b - a)

    # Answers to the current send and to the one before it. Lines merged into one event share
    # one send (the same answer), so a line's service starts at the previous *send's* answer.
    prev_done: float | None = None
    cur_done: float | None = None
    for seq in seqs:
        if kind == "I":
            rx, tx = t(seq, "ircd>x"), t(seq, "x>hs")
            done = t(seq, "resp>hs")
            leg("irc_client_to_ircd_out", t(seq, "bob>ircd"), rx)
            leg("synapse_send", tx, done)
            leg("synapse_to_sync", tx, t(seq, "hs>x"))
        else:
            rx, tx = t(seq, "x>as"), t(seq, "x>ircd")
            done = t(seq, "ircd>x")  # the echo-message confirmation
            leg("client_send_to_as_push", t(seq, "x>hs"), rx)
            leg("bridge_ack", rx, t(seq, "resp>as"))
            leg("ircd_echo", tx, done)
            leg("ircd_to_irc_client", tx, t(seq, "ircd>bob"))
        if done is None or done != cur_done:
            prev_done, cur_done = cur_done, done
        if rx is not None and tx is not None:
            added.append(tx - rx)
            start = rx if prev_done is None else max(rx, prev_done)
            service.append(tx - start)
    return added, service, legs


async def phase_irc_to_matrix(
    env: Env, name: str, n: int, rate: float | None, gap: float, drain_limit: float | None = None
) -> dict[str, Any]:
    """``rate`` None: one message at a time (closed loop, ``gap`` between); 0: all at once."""
    assert env.matrix is not None
    loop = asyncio.get_running_loop()
    seqs = [env.next_seq() for _ in range(n)]
    sent_at: dict[int, float] = {}
    futs = {}
    for s in seqs:
        futs[s] = env.matrix.expect[s] = loop.create_future()
    # Scrape first: the bridge's CPU for answering /metrics (and, the first time, for
    # importing prometheus_client) is the benchmark's, not the phase's.
    m0 = await scrape(env)
    cpu0 = env.procs_cpu()
    start = now()
    busy = 0.0
    for i, s in enumerate(seqs):
        if rate:
            delay = start + i / rate - now()
            if delay > 0:
                await asyncio.sleep(delay)
        sent_at[s] = now()
        env.bob.send("PRIVMSG", CHANNEL, text_for("I", s))
        if rate is None:
            try:
                await asyncio.wait_for(asyncio.shield(futs[s]), 30)
            except TimeoutError:
                pass
            busy += now() - sent_at[s]
            if gap:
                await asyncio.sleep(gap)
    last_sent = now()
    await drain(list(futs.values()), drain_limit)
    end = max((env.matrix.arrivals.get(s, 0.0) for s in seqs), default=now())
    await asyncio.sleep(0.3)  # let the bridge finish its bookkeeping before reading CPU
    cpu1, m1 = env.procs_cpu(), await scrape(env)
    for s in seqs:
        env.matrix.expect.pop(s, None)
    latencies = [env.matrix.arrivals[s] - sent_at[s] for s in seqs if s in env.matrix.arrivals]
    history = await env.matrix.history(n + 200)
    check = order_check(seqs, markers_in(history, "I"))
    delivered = len(latencies)
    result: dict[str, Any] = {
        "phase": name,
        "direction": "irc->matrix",
        "offered_rate": rate,
        "latency_ms": summary_ms(latencies),
        "throughput": round(delivered / busy, 1) if rate is None and busy else None,
        "check": check,
        "matrix_events": events_carrying(history, "I", seqs),
        "sync_order": order_check(seqs, env.matrix.order),
        "sync_limited": env.matrix.limited,
    }
    if rate is not None:
        result["throughput"] = round(delivered / max(end - start, 1e-9), 1)
        result["send_seconds"] = round(last_sent - start, 2)
    add_cpu(result, cpu0, cpu1, n)
    result["metrics_remote_handling_ms"] = histogram_quantiles(
        metrics_histogram(m0, "remote"), metrics_histogram(m1, "remote")
    )
    result["_seqs"] = seqs
    return result


async def phase_matrix_to_irc(
    env: Env, name: str, n: int, rate: float | None, gap: float, drain_limit: float | None = None
) -> dict[str, Any]:
    assert env.matrix is not None
    loop = asyncio.get_running_loop()
    seqs = [env.next_seq() for _ in range(n)]
    sent_at: dict[int, float] = {}
    futs = {}
    for s in seqs:
        futs[s] = env.bob.expect[s] = loop.create_future()
    own_before = len(env.matrix.own_order)
    # Scrape first: the bridge's CPU for answering /metrics (and, the first time, for
    # importing prometheus_client) is the benchmark's, not the phase's.
    m0 = await scrape(env)
    cpu0 = env.procs_cpu()
    start = now()
    busy = 0.0
    send_times: list[float] = []
    tasks = []

    async def one(s: int) -> None:
        sent_at[s] = now()
        send_times.append(await env.matrix.send(text_for("M", s)))  # type: ignore[union-attr]

    for i, s in enumerate(seqs):
        if rate is None:
            await one(s)
            try:
                await asyncio.wait_for(asyncio.shield(futs[s]), 30)
            except TimeoutError:
                pass
            busy += now() - sent_at[s]
            if gap:
                await asyncio.sleep(gap)
            continue
        if rate:
            delay = start + i / rate - now()
            if delay > 0:
                await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(s)))
    if tasks:
        await asyncio.gather(*tasks)
    last_sent = now()
    await drain(list(futs.values()), drain_limit)
    end = max((env.bob.arrivals.get(s, 0.0) for s in seqs), default=now())
    await asyncio.sleep(0.3)
    cpu1, m1 = env.procs_cpu(), await scrape(env)
    for s in seqs:
        env.bob.expect.pop(s, None)
    latencies = [env.bob.arrivals[s] - sent_at[s] for s in seqs if s in env.bob.arrivals]
    # Reference order: the room timeline (concurrent PUTs may be ordered either way by Synapse).
    history = await env.matrix.history(n + 200)
    mine = set(seqs)
    timeline = [s for s in markers_in(history, "M") if s in mine]
    if len(timeline) < n:  # history paging short: fall back to what /sync showed
        timeline = [s for s in env.matrix.own_order[own_before:] if s in mine]
    check = order_check(timeline, [s for s in env.bob.order if s in mine])
    check["not_on_matrix"] = n - len(set(timeline))
    delivered = len(latencies)
    result: dict[str, Any] = {
        "phase": name,
        "direction": "matrix->irc",
        "offered_rate": rate,
        "latency_ms": summary_ms(latencies),
        "client_send_ms": summary_ms(send_times),
        "throughput": round(delivered / busy, 1) if rate is None and busy else None,
        "check": check,
        "send_order_vs_timeline": order_check(seqs, timeline),
    }
    if rate is not None:
        result["throughput"] = round(delivered / max(end - start, 1e-9), 1)
        result["send_seconds"] = round(last_sent - start, 2)
    add_cpu(result, cpu0, cpu1, n)
    result["metrics_matrix_handling_ms"] = histogram_quantiles(
        metrics_histogram(m0, "matrix"), metrics_histogram(m1, "matrix")
    )
    result["_seqs"] = timeline
    return result


async def drain(futs: list[asyncio.Future[float]], limit: float | None = None) -> None:
    """Wait for deliveries: stop once all arrived, after 20 s without progress or ``limit`` s."""
    deadline = None if limit is None else now() + limit
    pending = [f for f in futs if not f.done()]
    while pending:
        timeout = 20.0 if deadline is None else min(20.0, deadline - now())
        if timeout <= 0:
            return
        done, still = await asyncio.wait(pending, timeout=timeout)
        if not done:
            return
        pending = list(still)


def add_cpu(result: dict[str, Any], cpu0: dict[str, float], cpu1: dict[str, float], n: int) -> None:
    per = {}
    for name in cpu1:
        if name in cpu0:
            per[name] = round((cpu1[name] - cpu0[name]) / n * 1000, 3)  # ms per message
    result["cpu_ms_per_msg"] = per
    # Same number, in the unit: CPU seconds per 1,000 messages.
    result["bridge_cpu_s_per_1000"] = round(per.get("bridge", 0.0), 3)


def attach_capture(results: list[dict[str, Any]], stamps: dict[str, float]) -> None:
    for r in results:
        seqs = r.pop("_seqs", [])
        if not stamps:
            continue
        kind = "I" if r["direction"] == "irc->matrix" else "M"
        added, service, legs = bridge_stamps(stamps, kind, seqs)
        r["bridge_added_ms"] = summary_ms(added)
        r["bridge_service_ms"] = summary_ms(service)
        r["legs_p50_ms"] = {k: summary_ms(v).get("p50") for k, v in legs.items()}


# -- set-up -----------------------------------------------------------------------------------


async def wait_for_bot(synapse: Any, bot_mxid: str, timeout: float = 60) -> None:
    url = f"{synapse.base_url}/_matrix/client/v3/profile/{quote(bot_mxid, safe='')}"
    deadline = now() + timeout
    async with aiohttp.ClientSession() as session:
        while now() < deadline:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the bridge bot was never registered")


async def open_portal(env: Env, user: Any) -> str:
    from tests.irc.e2e import alias

    deadline = now() + 60
    while True:
        try:
            room_id = str(await user.join(alias(CHANNEL)))
            break
        except Exception:
            if now() > deadline:
                raise
            await asyncio.sleep(0.5)
    env.puppet = await wait_puppet_join(env, 0)
    return room_id


async def warm_up(env: Env) -> None:
    """First messages create the ghost and join it: not measured."""
    for _ in range(3):
        await phase_irc_to_matrix(env, "warm-up", 1, None, 0)
        await phase_matrix_to_irc(env, "warm-up", 1, None, 0)


async def wait_puppet_join(env: Env, seen: int, timeout: float = 120) -> str:
    """The nick of the next puppet JOIN after the first ``seen`` ones."""
    deadline = now() + timeout
    while len(env.bob.puppet_joins) <= seen:
        if now() > deadline:
            raise TimeoutError("the Matrix user's puppet did not (re)join the channel")
        await asyncio.sleep(0.05)
    return env.bob.puppet_joins[seen]


async def add_logins(
    db_url: str, section: dict[str, Any], n: int, channels: list[str] | None = None
) -> float:
    """Store N Matrix users with an IRC login each, the way ``add_login`` stores them.

    ``channels``: saved again with these channels in the login's metadata (joined on connect).
    """
    from bridgekit.db import create_database
    from bridgekit.store import BridgeUser, Store
    from bridges.irc.connector import IRCConnector
    from tests.irc.e2e import DOMAIN, SERVER

    start = now()
    db = create_database(db_url)
    await db.start()
    try:
        store = Store(db)
        connector = IRCConnector(types.SimpleNamespace(domain=DOMAIN), section)  # type: ignore[arg-type]
        for i in range(n):
            mxid = f"@scale{i}:{DOMAIN}"
            login = await connector.make_login(mxid, SERVER)
            if channels:
                login.metadata["channels"] = channels
            else:
                await store.save_user(BridgeUser(mxid))
            await store.save_login(login)
    finally:
        await db.stop()
    return now() - start


async def settle_rss(bridge: BridgeProcess, seconds: float = 3.0) -> int:
    """RSS once it stops moving (sampled every 0.5 s; the last of ``seconds`` of samples)."""
    samples = []
    end = now() + seconds
    while now() < end:
        samples.append(bridge.rss_kib())
        await asyncio.sleep(0.5)
    return samples[-1]


async def connected_logins(bridge: BridgeProcess) -> tuple[int, int]:
    status = await bridge.get("/status")
    logins = status.get("logins", {})
    return sum(1 for v in logins.values() if v.get("state") == "CONNECTED"), len(logins)


async def restart_bridge(env: Env) -> None:
    env.bridge.stop()
    env.bridge.start()
    await env.bridge.wait_ready()


async def scale_phase(env: Env, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"requested": n}
    # Baseline: a fresh process with the one login of the latency phases.
    seen = len(env.bob.puppet_joins)
    await restart_bridge(env)
    await wait_puppet_join(env, seen)
    deadline = now() + 60
    while now() < deadline:
        if (await connected_logins(env.bridge))[0] >= 1:
            break
        await asyncio.sleep(0.2)
    rss0 = await settle_rss(env.bridge)
    cpu0 = env.bridge.cpu()  # start-up of a process with one login, all of it
    out["baseline_rss_mib"] = round(rss0 / 1024, 1)
    env.bridge.stop()
    out["store_logins_s"] = round(await add_logins(env.db_url, env.irc_section, n), 1)
    users_before = await env.bob.user_count()
    seen = len(env.bob.puppet_joins)
    t0 = now()
    env.bridge.start()
    await env.bridge.wait_ready(timeout=300)
    t_ready = now()
    # Progress from the ircd's user count (free for the bridge); exact state from /status.
    target = users_before + n + 1
    last, last_change, peak_rss = 0, now(), 0
    limit = max(120.0, n * 0.06)
    while now() - t0 < limit:
        count = await env.bob.user_count()
        peak_rss = max(peak_rss, env.bridge.rss_kib())
        if count != last:
            last, last_change = count, now()
        if count >= target or now() - last_change > 30:
            break
        await asyncio.sleep(0.5)
    t_registered = now()
    cpu_registered = env.bridge.cpu()
    await asyncio.sleep(2)
    connected, logins = await connected_logins(env.bridge)
    rss_n = await settle_rss(env.bridge, 5.0)
    idle_cpu0, idle_t0 = env.bridge.cpu(), now()
    await asyncio.sleep(10)
    idle_pct = (env.bridge.cpu() - idle_cpu0) / (now() - idle_t0) * 100
    conns = max(connected - 1, 1)  # the latency phases' user is not part of N
    out.update(
        {
            "logins": logins,
            "connected": connected,
            "ircd_users_added": last - users_before,
            "bridge_start_s": round(t_ready - t0, 1),
            "register_all_s": round(t_registered - t0, 1),
            "connections_per_s": round(conns / max(t_registered - t_ready, 1e-9), 1),
            "startup_cpu_s": round(cpu_registered, 2),
            "baseline_startup_cpu_s": round(cpu0, 2),
            "cpu_ms_per_conn": round((cpu_registered - cpu0) / conns * 1000, 3),
            "rss_mib": round(rss_n / 1024, 1),
            "peak_rss_mib": round(max(peak_rss, proc_status(env.bridge.pid, "VmHWM")) / 1024, 1),
            "kib_per_conn": round((rss_n - rss0) / conns, 1),
            "idle_cpu_pct": round(idle_pct, 2),
            "fds": len(os.listdir(f"/proc/{env.bridge.pid}/fd")),
            "nofile_limit": proc_nofile(env.bridge.pid),
        }
    )
    await wait_puppet_join(env, seen)
    return out


async def fanout_phase(env: Env, n: int, k: int) -> dict[str, Any]:
    """K of the N stored users also in the channel: every IRC line reaches K+1 connections."""
    env.bridge.stop()
    await add_logins(env.db_url, env.irc_section, k, channels=[CHANNEL])
    seen, joins0 = len(env.bob.puppet_joins), env.bob.scale_joins
    t0 = now()
    env.bridge.start()
    await env.bridge.wait_ready(timeout=300)
    await wait_puppet_join(env, seen)
    deadline = now() + max(120.0, n * 0.06)
    while now() < deadline:
        if env.bob.scale_joins - joins0 >= k:
            break
        await asyncio.sleep(0.2)
    out = {"channel_puppets": env.bob.scale_joins - joins0, "joined_s": round(now() - t0, 1)}
    await asyncio.sleep(3)  # NAMES, member sync
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bridgekit.bridge import discover_connectors
    from bridgekit.config import Config
    from bridgekit.registration import generate
    from tests.conftest import BridgeEnv
    from tests.harness.inspircd import InspIRCd
    from tests.harness.ports import free_port
    from tests.harness.synapse import SynapseServer
    from tests.irc.e2e import DOMAIN, irc_networks

    nofile = raise_nofile()
    started = now()
    workdir = Path(tempfile.mkdtemp(prefix="bench-irc-"))
    report: dict[str, Any] = {
        "conditions": {
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "nofile": list(nofile),
            "workdir": str(workdir),
        }
    }
    ircd = InspIRCd(workdir / "ircd", flood_control=False, tls=args.tls)
    report["conditions"]["tls"] = args.tls
    synapse = None
    env: Env | None = None
    try:
        ircd.start()
        benv = BridgeEnv(workdir)
        section = irc_networks(
            ircd,
            send_rate=args.send_rate,
            burst=args.send_burst,
            max_connections=max(10_000, args.scale + 10),
        )
        if args.follower_read_batch is not None:
            section["irc"]["servers"]["local"]["follower_read_batch"] = args.follower_read_batch
        if args.read_batch is not None:
            section["irc"]["servers"]["local"]["read_batch"] = args.read_batch
        if args.read_batch_max is not None:
            section["irc"]["servers"]["local"]["read_batch_max"] = args.read_batch_max
        if args.tls:
            # The bridge's connections use the TLS listener; the benchmark's own IRC
            # clients stay on the plain port.
            section["irc"]["servers"]["local"].update(
                port=ircd.tls_port, tls=True, tls_ca_file=str(ircd.cert_path)
            )
        # Connection starts per second and registrations in flight (InspIRCd 3 completes
        # registrations on a once-a-second timer); 0 leaves the connector's default.
        reconnect = section["irc"]["servers"]["local"]["reconnect"]
        if args.start_rate:
            reconnect["rate"] = args.start_rate
        if args.concurrency:
            reconnect["concurrency"] = args.concurrency
        reg_config = Config.from_dict(benv.config_dict("sqlite:///unused.db", networks=section))
        reg_path = workdir / "registration.yaml"
        generate(reg_config, discover_connectors(), reg_path)
        synapse = SynapseServer(workdir / "synapse", [reg_path], server_name=DOMAIN)
        t = now()
        synapse.start()
        report["conditions"]["synapse_start_s"] = round(now() - t, 1)
        benv.synapse = synapse
        metrics_port = free_port()
        db_url = f"sqlite:///{workdir}/bridge.db"
        config = benv.config_dict(
            db_url,
            networks=section,
            **{
                "logging.level": args.log_level,
                "metrics.enabled": True,
                "metrics.port": metrics_port,
                **({"bridge.merge_hold": args.merge_hold} if args.merge_hold is not None else {}),
            },
        )
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        bridge = BridgeProcess(workdir, config_path, metrics_port)
        env = Env(args, workdir, ircd, synapse, bridge, benv, db_url, section["irc"])
        bridge.start()
        await bridge.wait_ready()
        await wait_for_bot(synapse, f"@bridgekitbot:{DOMAIN}")
        report["conditions"]["bridge_nofile"] = proc_nofile(bridge.pid)

        env.bob_port = await env.bob.connect(ircd.host, ircd.port)
        await env.bob.join(CHANNEL)
        user = await synapse.register_user(MATRIX_USER)
        room_id = await open_portal(env, user)
        await user.close()
        env.matrix = MatrixSide(synapse.base_url, user.user_id, user.access_token)
        await env.matrix.start(room_id)
        env.bob.keep_lines = True
        await warm_up(env)

        roles = {"ircd": ircd.port, "hs": synapse.port, "as": benv.as_port, "bob": env.bob_port}
        report["conditions"]["bridge_rss_mib_idle"] = round(env.bridge.rss_kib() / 1024, 1)
        results = await latency_phases(env, roles, args, report)
        report["phases"] = results
        report["conditions"]["bridge_rss_mib_end"] = round(env.bridge.rss_kib() / 1024, 1)
        if args.scale > 0:
            scale = await scale_phase(env, args.scale)
            if args.scale_messages:
                # Does the hot path care about N? Single messages with every connection up.
                await warm_up(env)
                scale["latency"] = await latency_phases(
                    env, roles, args, report, single_only=args.scale_messages
                )
            if args.fanout and args.scale_messages:
                scale["fanout"] = await fanout_phase(env, args.scale, min(args.fanout, args.scale))
                await warm_up(env)
                scale["fanout"]["latency"] = await latency_phases(
                    env,
                    roles,
                    args,
                    report,
                    single_only=args.scale_messages,
                    irc_rate_too=args.fanout_rate,
                )
            report["scale"] = scale
        report["conditions"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        report["conditions"]["run_seconds"] = round(now() - started, 1)
        report["conditions"]["config"] = {
            "send_rate": args.send_rate,
            "burst": args.send_burst,
            "reconnect_rate": args.start_rate or "default",
            "reconnect_concurrency": args.concurrency or "default",
            "log_level": args.log_level,
            "database": "sqlite",
        }
        return report
    finally:
        if env is not None:
            if env.matrix is not None:
                await env.matrix.close()
            if env.bob.transport is not None:
                env.bob.transport.close()
            env.bridge.stop()
            if env.sniffer is not None:
                with contextlib.suppress(Exception):
                    env.sniffer.stop()
        if synapse is not None:
            synapse.stop()
        ircd.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


async def latency_phases(
    env: Env,
    roles: dict[str, int],
    args: argparse.Namespace,
    report: dict[str, Any],
    single_only: int = 0,
    irc_rate_too: bool = False,
) -> list[dict[str, Any]]:
    sniffer = None
    # Over TLS the captured bridge<->ircd packets are ciphertext: no wire timestamps per line.
    if not args.no_capture and not args.tls:
        sniffer = Sniffer(roles)
        if sniffer.start():
            env.sniffer = sniffer
            report["conditions"]["capture"] = "AF_PACKET on lo" + (
                " with BPF" if sniffer.bpf else ""
            )
        else:
            report["conditions"]["capture"] = f"unavailable: {sniffer.error}"
            sniffer = None
    results = []
    idle0, t_idle = env.bridge.cpu(), now()
    await asyncio.sleep(2)
    report["conditions"].setdefault(
        "bridge_idle_cpu_pct", round((env.bridge.cpu() - idle0) / (now() - t_idle) * 100, 2)
    )
    n_single = single_only or args.single
    i2m = getattr(args, "direction", "both") in ("both", "irc-to-matrix")
    m2i = getattr(args, "direction", "both") in ("both", "matrix-to-irc")
    if n_single:
        if i2m:
            results.append(await phase_irc_to_matrix(env, "single", n_single, None, args.gap))
        if m2i:
            results.append(await phase_matrix_to_irc(env, "single", n_single, None, args.gap))
    if single_only and irc_rate_too and args.rate and args.seconds:
        # IRC -> Matrix at the sustained rate, here with many connections hearing each line.
        await asyncio.sleep(1)
        label = f"{args.rate:g}/s"
        n_rate = int(args.rate * args.seconds)
        results.append(await phase_irc_to_matrix(env, label, n_rate, args.rate, 0))
    if not single_only:
        n_rate = int(args.rate * args.seconds)
        if n_rate:
            label = f"{args.rate:g}/s"
            if i2m:
                results.append(await phase_irc_to_matrix(env, label, n_rate, args.rate, 0))
                await asyncio.sleep(1)
            if m2i:
                results.append(await phase_matrix_to_irc(env, label, n_rate, args.rate, 0))
                await asyncio.sleep(1)
        if args.burst:
            if i2m:
                results.append(await phase_irc_to_matrix(env, "burst", args.burst, 0, 0))
                await asyncio.sleep(1)
            if m2i:
                results.append(await phase_matrix_to_irc(env, "burst", args.burst, 0, 0))
    stamps: dict[str, float] = {}
    if sniffer is not None:
        stamps = sniffer.stop()
        env.sniffer = None
    attach_capture(results, stamps)
    return results


# -- output -----------------------------------------------------------------------------------


def fmt(value: Any, width: int = 7) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return (f"{value:.1f}" if value >= 10 else f"{value:.2f}").rjust(width)
    return str(value).rjust(width)


def print_table(report: dict[str, Any]) -> None:
    c = report["conditions"]
    cfg = c.get("config", {})
    print(
        f"bench/irc.py: real Synapse (SQLite) + InspIRCd (flood control off) + `bridgekit run` "
        f"in its own process; {c.get('cpus')} CPUs, load {c.get('loadavg_start')} -> "
        f"{c.get('loadavg_end')}, {c.get('run_seconds')} s"
    )
    print(
        f"connector send_rate {cfg.get('send_rate')}/s burst {cfg.get('burst')}, reconnect "
        f"rate {cfg.get('reconnect_rate')}/s concurrency {cfg.get('reconnect_concurrency')}, "
        f"bridge log "
        f"level {cfg.get('log_level')}, fd limit {c.get('bridge_nofile')}, idle bridge CPU "
        f"{c.get('bridge_idle_cpu_pct')}%, bridge RSS {c.get('bridge_rss_mib_idle')} MiB idle, "
        f"{c.get('bridge_rss_mib_end')} MiB after the phases, capture: {c.get('capture', 'off')}"
        f"{', bridge<->ircd over TLS' if c.get('tls') else ''}"
    )
    print_phases(report.get("phases", []))
    scale = report.get("scale")
    if scale:
        n = scale["requested"]
        print()
        print(
            f"scale {n}: {scale['connected']}/{scale['logins']} logins CONNECTED "
            f"(ircd +{scale['ircd_users_added']} users) {scale['register_all_s']} s after exec "
            f"({scale['connections_per_s']} conn/s once up); "
            f"{scale['cpu_ms_per_conn']} ms CPU/conn"
        )
        print(
            f"  RSS {scale['baseline_rss_mib']} MiB (1 login) -> {scale['rss_mib']} MiB "
            f"(peak {scale['peak_rss_mib']}) = {scale['kib_per_conn']} KiB per connection; "
            f"idle CPU {scale['idle_cpu_pct']}% of a core; {scale['fds']} fds "
            f"(limit {scale['nofile_limit']})"
        )
        if scale.get("latency"):
            print(f"  with {n} connections up:")
            print_phases(scale["latency"])
        fan = scale.get("fanout")
        if fan:
            print(
                f"  with {fan['channel_puppets']} of them also in {CHANNEL} (each IRC line "
                f"reaches {fan['channel_puppets'] + 1} bridge connections):"
            )
            print_phases(fan.get("latency", []))


def print_phases(phases: list[dict[str, Any]]) -> None:
    if not phases:
        return
    print(
        f"{'':22}{'n':>5}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8} ms"
        f"{'msg/s':>7}{'lost':>5}{'reord':>6}{'dup':>4}  bridge CPU s/1k msg"
    )
    for r in phases:
        arrow = "IRC->Matrix" if r["direction"] == "irc->matrix" else "Matrix->IRC"
        lat = r["latency_ms"]
        chk = r["check"]
        cpu = r["cpu_ms_per_msg"]
        print(
            f"{arrow + ' ' + r['phase']:22}{lat.get('n', 0):>5}{fmt(lat.get('p50'), 8)}"
            f"{fmt(lat.get('p95'), 8)}{fmt(lat.get('p99'), 8)}{fmt(lat.get('max'), 8)}   "
            f"{fmt(r.get('throughput'), 7)}{chk['lost']:>5}{chk['reordered']:>6}"
            f"{chk['duplicated']:>4}  {cpu.get('bridge', 0):.2f} (loop "
            f"{cpu.get('bridge_loop', 0):.2f}); synapse {cpu.get('synapse', 0):.1f}"
            + (f"; in {r['matrix_events']} events" if "matrix_events" in r else "")
        )
        for key, label in (("bridge_added_ms", "bridge-added"), ("bridge_service_ms", "  service")):
            b = r.get(key)
            if b and b.get("n"):
                print(
                    f"{'  ' + label:22}{b['n']:>5}{fmt(b.get('p50'), 8)}{fmt(b.get('p95'), 8)}"
                    f"{fmt(b.get('p99'), 8)}{fmt(b.get('max'), 8)}"
                )
        if not r.get("bridge_added_ms"):  # no capture: the bridge's own histogram (coarse)
            h = r.get("metrics_remote_handling_ms") or r.get("metrics_matrix_handling_ms") or {}
            print(f"{'  handling (metrics)':22}{h.get('n', 0):>5}{fmt(h.get('p50'), 8)}")


def add_phase_arguments(parser: argparse.ArgumentParser, burst: int) -> None:
    """The latency phases' options, shared with bench/heisenbridge.py (same phases there)."""
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--single", type=int, default=100, help="messages one at a time, each way")
    parser.add_argument(
        "--gap",
        type=float,
        default=0.3,
        help="pause between single messages: with it, lines come more than the runtime's "
        "stream gap (0.25 s) apart, so none is held as part of a paste",
    )
    parser.add_argument("--rate", type=float, default=50, help="sustained rate (msg/s)")
    parser.add_argument("--seconds", type=float, default=6, help="length of the sustained phase")
    parser.add_argument(
        "--burst", type=int, default=burst, help="messages sent all at once (0: skip)"
    )
    parser.add_argument(
        "--direction",
        choices=("both", "irc-to-matrix", "matrix-to-irc"),
        default="both",
        help="run the phases of one direction only (to profile it alone)",
    )
    parser.add_argument("--no-capture", action="store_true", help="no packet capture")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="the bridge connects to InspIRCd's TLS listener (self-signed, trusted by CA file)",
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--sniff":
        sniff_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_phase_arguments(parser, burst=100)
    parser.add_argument("--scale", type=int, default=1000, help="puppeted connections (0: skip)")
    parser.add_argument(
        "--scale-messages", type=int, default=30, help="single messages each way at scale"
    )
    parser.add_argument(
        "--start-rate",
        type=float,
        default=500,
        help="connector reconnect.rate (connection starts per second; 0: the connector's "
        "default, 20)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=500,
        help="connector reconnect.concurrency (registrations in flight; 0: the connector's "
        "default, 100)",
    )
    parser.add_argument(
        "--fanout",
        type=int,
        default=100,
        help="then this many of the --scale users also join the channel (0: skip)",
    )
    parser.add_argument("--send-rate", type=float, default=500, help="connector send_rate")
    parser.add_argument("--send-burst", type=int, default=500, help="connector burst")
    parser.add_argument(
        "--merge-hold",
        type=float,
        help="the bridge's bridge.merge_hold (default: the runtime's, 0.25 s)",
    )
    parser.add_argument(
        "--fanout-rate",
        action="store_true",
        help="with --fanout, also send IRC->Matrix at --rate for --seconds to the shared channel",
    )
    parser.add_argument(
        "--read-batch",
        type=float,
        help="connector read_batch (default: the connector's, 0.05 s; 0 = off)",
    )
    parser.add_argument(
        "--read-batch-max",
        type=float,
        help="connector read_batch_max (default: the connector's, 0.2 s)",
    )
    parser.add_argument(
        "--follower-read-batch",
        type=float,
        help="connector follower_read_batch (default: the connector's, 0.25 s; 0 = off)",
    )
    parser.add_argument("--log-level", default="WARNING", help="the bridge's logging.level")
    parser.add_argument(
        "--profile", help="run the bridge under cProfile, writing FILE (call counts; slower)"
    )
    parser.add_argument(
        "--bridge-python",
        help="run the bridge with this interpreter: a venv made by `pip install "
        "'bridgekit[irc]'` measures what an admin installs (this venv has every extra, and "
        "slixmpp's aiodns makes aiohttp load c-ares: about 1 MiB)",
    )
    args = parser.parse_args()
    if args.bridge_python:
        BRIDGE_PYTHON[:] = [args.bridge_python]
    if args.profile:
        PROFILE_ARGS[:] = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
