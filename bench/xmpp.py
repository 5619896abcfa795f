"""Benchmark of the XMPP connector end to end in one MUC: a real Synapse, a real Prosody.

    .venv/bin/python bench/xmpp.py            # compact table
    .venv/bin/python bench/xmpp.py --json     # machine-readable results

The bridge runs as ``python -m bridgekit run -c config.yaml`` in a process of its own, so its CPU
time is read from /proc/<pid>/stat (Synapse's and Prosody's too, for context). The clients (a
slixmpp client "Bob" in the MUC and a Matrix user "Alice" in the portal) run in this process.

* XMPP->Matrix: Bob's groupchat ``<message>`` is written -> Alice's /sync returns the event.
* Matrix->XMPP: Alice's ``PUT /send`` starts -> Bob's slixmpp handler gets the message.
* Phases each way: one message at a time (``--single``), a sustained rate (``--rate`` msg/s for
  ``--seconds``) and a burst (``--burst`` messages sent at once; Matrix sends with at most
  ``--concurrency`` PUTs in flight), whose delivery rate is the throughput ceiling.
* Every message carries a sequence marker; lost, duplicated and reordered messages are counted.
  XMPP->Matrix order is checked against the send order (one XMPP stream, so the order is
  defined); Matrix->XMPP against the order of the room's timeline as Alice's /sync returns it
  (concurrent PUTs may be ordered by Synapse differently from the order they were started).

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.harness is not an installed package
sys.path.insert(0, str(REPO / "bench"))

from _stats import order_check, proc_cpu, summary_ms  # noqa: E402

SERVER_NAME = "bridgekit.test"
MARKER_RE = re.compile(r"BK([XM])(\d{7})")
FILLER = "the quick brown fox jumps over the lazy dog"


def now() -> float:
    return time.perf_counter()


def text_for(kind: str, seq: int) -> str:
    return f"BK{kind}{seq:07d} {FILLER}"


def marker(body: Any) -> tuple[str, int] | None:
    m = MARKER_RE.match(str(body or ""))
    return (m.group(1), int(m.group(2))) if m else None


# -- processes --------------------------------------------------------------------------------


class BridgeProcess:
    """``python -m bridgekit run -c config.yaml`` with its metrics/status listener."""

    def __init__(self, workdir: Path, config_path: Path, metrics_port: int) -> None:
        self.workdir = workdir
        self.config_path = config_path
        self.metrics_port = metrics_port
        self.proc: Any = None
        self.log_path = workdir / "bridge.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return int(self.proc.pid)

    def start(self) -> None:
        import subprocess

        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bridgekit", "run", "-c", str(self.config_path)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 60) -> None:
        url = f"http://127.0.0.1:{self.metrics_port}/status"
        deadline = now() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    raise RuntimeError(f"bridge exited ({code}); see {self.log_path}")
                try:
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, OSError):
                    pass
                if now() > deadline:
                    raise RuntimeError(f"bridge not ready; see {self.log_path}")
                await asyncio.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        import signal
        import subprocess

        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- clients ----------------------------------------------------------------------------------


class MatrixSide:
    """Alice: her own /sync loop (timestamps every event as it is returned) and sends."""

    def __init__(self, base_url: str, user_id: str, token: str) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.headers = {"Authorization": f"Bearer {token}"}
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90))
        self.room_id = ""
        self.events: list[tuple[float, dict[str, Any]]] = []  # (arrival, event), sync order
        self.limited = 0  # syncs whose timeline had a gap
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.filter = json.dumps(
            {"room": {"timeline": {"limit": 1000}, "state": {"lazy_load_members": True}}}
        )

    async def _sync(self, since: str | None, timeout_ms: int) -> str:
        params = {"timeout": str(timeout_ms), "filter": self.filter}
        if since:
            params["since"] = since
        async with self.session.get(
            f"{self.base_url}/_matrix/client/v3/sync", params=params, headers=self.headers
        ) as resp:
            resp.raise_for_status()
            data = await resp.json()
        t = now()
        room = data.get("rooms", {}).get("join", {}).get(self.room_id)
        if room and since:
            timeline = room.get("timeline", {})
            if timeline.get("limited"):
                self.limited += 1
            for ev in timeline.get("events", []):
                self.events.append((t, ev))
            self.changed.set()
        return str(data["next_batch"])

    async def start(self, room_id: str) -> None:
        self.room_id = room_id
        since = await self._sync(None, 0)
        self.task = asyncio.create_task(self._loop(since))

    async def _loop(self, since: str) -> None:
        while True:
            try:
                since = await self._sync(since, 30000)
            except (aiohttp.ClientError, TimeoutError, OSError):
                await asyncio.sleep(0.2)

    async def send(self, text: str) -> None:
        path = (
            f"/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/send/m.room.message/"
            f"{secrets.token_hex(8)}"
        )
        async with self.session.put(
            self.base_url + path, json={"msgtype": "m.text", "body": text}, headers=self.headers
        ) as resp:
            resp.raise_for_status()
            await resp.read()

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.session.close()


class XmppSide:
    """Bob: an XmppTestClient (tests/harness/prosody.py) plus a timestamping message handler."""

    def __init__(self, client: Any, room: str) -> None:
        self.client = client
        self.room = room
        self.got: list[tuple[float, str, str]] = []  # (arrival, from, body)
        self.changed = asyncio.Event()
        client.xmpp.add_event_handler("groupchat_message", self._on_message)

    def _on_message(self, msg: Any) -> None:
        self.got.append((now(), str(msg["from"]), str(msg["body"])))
        self.changed.set()

    def say(self, text: str) -> None:
        self.client.say(self.room, text)


# -- phases -----------------------------------------------------------------------------------


class Env:
    def __init__(self, bob: XmppSide, alice: MatrixSide, procs: dict[str, int]) -> None:
        self.bob = bob
        self.alice = alice
        self.procs = procs
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def cpu(self) -> dict[str, float]:
        out = {}
        for name, pid in self.procs.items():
            try:
                out[name] = proc_cpu(pid)
            except OSError:
                out[name] = float("nan")
        out["bench"] = time.process_time()
        return out


def matrix_seen(env: Env, kind: str) -> list[tuple[float, int, str]]:
    """(arrival, seq, sender) of Alice's timeline events carrying a ``kind`` marker."""
    out = []
    for t, ev in env.alice.events:
        if ev.get("type") != "m.room.message":
            continue
        m = marker(ev.get("content", {}).get("body"))
        if m and m[0] == kind:
            out.append((t, m[1], str(ev.get("sender"))))
    return out


def xmpp_seen(env: Env, kind: str) -> list[tuple[float, int, str]]:
    out = []
    for t, frm, body in env.bob.got:
        m = marker(body)
        if m and m[0] == kind:
            out.append((t, m[1], frm))
    return out


async def wait_all(
    env: Env, direction: str, seqs: list[int], timeout: float
) -> list[tuple[float, int, str]]:
    """Wait until every seq has arrived on the receiving side (or timeout); return arrivals."""
    want = set(seqs)
    deadline = now() + timeout
    while True:
        if direction == "x2m":
            seen = [a for a in matrix_seen(env, "X") if a[1] in want]
            event = env.alice.changed
        else:
            seen = [a for a in xmpp_seen(env, "M") if a[1] in want]
            event = env.bob.changed
        if {a[1] for a in seen} >= want or now() > deadline:
            return seen
        event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(0.01, min(1.0, deadline - now())))


async def send_one(env: Env, direction: str, seq: int) -> float:
    """Send one marked message; return when the send started."""
    if direction == "x2m":
        t = now()
        env.bob.say(text_for("X", seq))
        return t
    t = now()
    await env.alice.send(text_for("M", seq))
    return t


async def phase(
    env: Env,
    direction: str,
    name: str,
    n: int,
    rate: float | None,
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    """``rate`` None: one at a time (wait for each); 0: all at once; else messages per second."""
    seqs = [env.next_seq() for _ in range(n)]
    sent_at: dict[int, float] = {}
    cpu0 = env.cpu()
    t0 = now()
    if rate is None:
        for s in seqs:
            sent_at[s] = await send_one(env, direction, s)
            await wait_all(env, direction, [s], timeout)
    else:
        sem = asyncio.Semaphore(concurrency)
        tasks = []

        async def one(s: int) -> None:
            async with sem:
                sent_at[s] = await send_one(env, direction, s)

        for i, s in enumerate(seqs):
            if rate > 0:
                delay = t0 + i / rate - now()
                if delay > 0:
                    await asyncio.sleep(delay)
            if direction == "x2m":
                sent_at[s] = await send_one(env, direction, s)
            else:
                tasks.append(asyncio.create_task(one(s)))
        await asyncio.gather(*tasks)
    t_sent = now()
    seen = await wait_all(env, direction, seqs, timeout)
    t_done = max((a[0] for a in seen), default=now())
    cpu1 = env.cpu()
    first: dict[int, float] = {}
    for t, s, _ in seen:
        first.setdefault(s, t)
    lat = [first[s] - sent_at[s] for s in seqs if s in first and s in sent_at]
    if direction == "x2m":
        reference = seqs  # one XMPP stream: send order is the order
    else:
        # Alice's own events in her timeline: the order Synapse gave them.
        reference = []
        for s in (a[1] for a in matrix_seen(env, "M")):
            if s in sent_at and s not in reference:
                reference.append(s)
        reference += [s for s in seqs if s not in reference]
    check = order_check(reference, [a[1] for a in seen])
    if direction == "m2x":
        check["reordered_vs_send_start"] = order_check(
            sorted(seqs, key=lambda s: sent_at.get(s, 0)), [a[1] for a in seen]
        )["reordered"]
    span = t_done - t0
    delivered = check["delivered"]
    bridge_cpu = cpu1["bridge"] - cpu0["bridge"]
    return {
        "direction": direction,
        "phase": name,
        "n": n,
        "offered_rate": rate,
        "latency_ms": summary_ms(lat),
        "send_s": round(t_sent - t0, 3),
        "span_s": round(span, 3),
        "throughput_msg_s": round(delivered / span, 1) if span > 0 else None,
        "check": check,
        "cpu_s": {k: round(cpu1[k] - cpu0[k], 3) for k in cpu1},
        "bridge_cpu_s_per_1000": round(bridge_cpu * 1000 / delivered, 3) if delivered else None,
    }


# -- set-up -----------------------------------------------------------------------------------


def bridge_config(workdir: Path, synapse_url: str, prosody: Any, tokens: dict[str, Any]) -> Any:
    return {
        "homeserver": {"address": synapse_url, "domain": SERVER_NAME},
        "appservice": {
            "hostname": "127.0.0.1",
            "port": tokens["as_port"],
            "address": f"http://127.0.0.1:{tokens['as_port']}",
            "id": "bridgekit",
            "bot": {"username": "bridgekitbot", "displayname": "Bridge bot"},
            "as_token": tokens["as_token"],
            "hs_token": tokens["hs_token"],
        },
        "database": {"url": f"sqlite:///{workdir}/bridgekit.db"},
        "permissions": {"*": "relay", SERVER_NAME: "user"},
        "bridge": {"state_notice_delay": 1},
        "logging": {"level": "WARNING"},
        "metrics": {"enabled": True, "hostname": "127.0.0.1", "port": tokens["metrics_port"]},
        # As in tests/xmpp/conftest.py: events queued without a login must carry their network.
        "networks": {"fake": {"enabled": True}, "xmpp": prosody.bridge_config()},
    }


async def open_portal(synapse: Any, bob_client: Any, room: str, alice_name: str) -> tuple[Any, str]:
    from bridgekit.contract.ids import escape_localpart

    alice = await synapse.register_user(alice_name)
    alias = f"#_xmpp_{escape_localpart(room)}:{SERVER_NAME}"
    deadline = now() + 60
    while True:
        try:
            room_id = await alice.join(alias)
            break
        except Exception:
            if now() > deadline:
                raise
            await asyncio.sleep(0.5)
    await bob_client.wait_for(
        lambda p: (
            p["from"].bare == room
            and p["from"].resource not in ("Bob", "")
            and p["type"] != "unavailable"
        ),
        timeout=30,
        presences=True,
    )
    return alice, room_id


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bridgekit.bridge import discover_connectors
    from bridgekit.config import Config
    from bridgekit.registration import generate
    from bridgekit.testing.ports import free_port
    from bridgekit.testing.synapse import SynapseServer
    from tests.harness.prosody import Prosody, require_prosody

    require_prosody()
    t_setup = now()
    workdir = Path(tempfile.mkdtemp(prefix="bench-xmpp-"))
    prosody = Prosody(workdir / "prosody")
    prosody.start()
    tokens = {
        "as_port": free_port(),
        "metrics_port": free_port(),
        "as_token": secrets.token_hex(32),
        "hs_token": secrets.token_hex(32),
    }
    # The registration covers the namespaces of every installed connector, as in tests/conftest.py.
    base = bridge_config(workdir, "http://127.0.0.1:1", prosody, tokens)
    reg_conf = dict(base, networks={name: {"enabled": True} for name in discover_connectors()})
    reg_path = workdir / "registration.yaml"
    generate(Config.from_dict(reg_conf), discover_connectors(), reg_path)
    synapse = SynapseServer(workdir / "synapse", [reg_path], server_name=SERVER_NAME)
    bridge: BridgeProcess | None = None
    bob_client = None
    alice_side: MatrixSide | None = None
    try:
        await asyncio.to_thread(synapse.start)
        config_path = workdir / "config.yaml"
        config_path.write_text(
            yaml.safe_dump(bridge_config(workdir, synapse.base_url, prosody, tokens))
        )
        bridge = BridgeProcess(workdir, config_path, tokens["metrics_port"])
        bridge.start()
        await bridge.wait_ready()
        tag = secrets.token_hex(3)
        bob_client = await prosody.client(f"benchbob{tag}")
        room = f"bench{tag}@{prosody.muc}"
        await bob_client.join(room, "Bob")
        bob = XmppSide(bob_client, room)
        alice_client, room_id = await open_portal(synapse, bob_client, room, f"benchalice{tag}")
        alice_side = MatrixSide(synapse.base_url, alice_client.user_id, alice_client.access_token)
        await alice_client.close()
        await alice_side.start(room_id)
        procs = {"bridge": bridge.pid, "synapse": synapse._proc.pid, "prosody": prosody.proc.pid}
        env = Env(bob, alice_side, procs)
        setup_s = now() - t_setup
        # Warm-up (not measured): the first messages create and join the ghost.
        for d in ("x2m", "m2x"):
            w = await phase(env, d, "warm-up", 5, None, 1, 30)
            if w["check"]["lost"]:
                raise RuntimeError(f"warm-up {d}: messages lost: {w['check']}")
        results = []
        for d in ("x2m", "m2x"):
            results.append(await phase(env, d, "single", args.single, None, 1, args.timeout))
            results.append(
                await phase(
                    env,
                    d,
                    "sustained",
                    int(args.rate * args.seconds),
                    args.rate,
                    args.concurrency,
                    args.timeout,
                )
            )
            if args.burst:
                await asyncio.sleep(1)
                results.append(
                    await phase(env, d, "burst", args.burst, 0, args.concurrency, args.timeout)
                )
            await asyncio.sleep(1)
        ghosts = {a[2] for a in matrix_seen(env, "X")}
        nicks = {a[2] for a in xmpp_seen(env, "M")}
        return {
            "conditions": {
                "cpus": os.cpu_count(),
                "loadavg_start": os.getloadavg(),
                "python": sys.version.split()[0],
                "bridge": "separate process (python -m bridgekit run), sqlite, log level WARNING",
                "setup_s": round(setup_s, 1),
                "args": vars(args),
            },
            "senders_seen": {"x2m": sorted(ghosts), "m2x": sorted(nicks)},
            "sync_gaps": alice_side.limited,
            "results": results,
            "total_s": round(now() - t_setup, 1),
        }
    finally:
        if alice_side is not None:
            await alice_side.close()
        if bob_client is not None:
            await bob_client.close()
        if bridge is not None:
            bridge.stop()
        await asyncio.to_thread(synapse.stop)
        prosody.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work dir kept: {workdir}", file=sys.stderr)


def table(out: dict[str, Any]) -> str:
    head = (
        f"{'dir':<4} {'phase':<9} {'n':>4} {'rate':>5} {'p50ms':>8} {'p95ms':>8} {'p99ms':>8}"
        f" {'maxms':>8} {'msg/s':>6} {'lost':>4} {'dup':>3} {'reord':>5} {'brCPUs':>6}"
        f" {'s/1k':>6} {'synCPUs':>7} {'prosCPU':>7}"
    )
    lines = [head]
    for r in out["results"]:
        lat, c, cpu = r["latency_ms"], r["check"], r["cpu_s"]
        rate = (
            "1by1"
            if r["offered_rate"] is None
            else ("max" if not r["offered_rate"] else f"{r['offered_rate']:g}")
        )
        lines.append(
            f"{r['direction']:<4} {r['phase']:<9} {r['n']:>4} {rate:>5}"
            f" {lat.get('p50', '-'):>8} {lat.get('p95', '-'):>8} {lat.get('p99', '-'):>8}"
            f" {lat.get('max', '-'):>8} {r['throughput_msg_s']:>6} {c['lost']:>4}"
            f" {c['duplicated']:>3} {c['reordered']:>5} {cpu['bridge']:>6.2f}"
            f" {r['bridge_cpu_s_per_1000']:>6} {cpu['synapse']:>7.2f} {cpu['prosody']:>7.2f}"
        )
    cond = out["conditions"]
    lines.append(
        f"cpus={cond['cpus']} loadavg at start={tuple(round(x, 2) for x in cond['loadavg_start'])}"
        f" setup={cond['setup_s']}s total={out['total_s']}s sync gaps={out['sync_gaps']}"
    )
    m2x = [r for r in out["results"] if r["direction"] == "m2x"]
    extra = [f"{r['phase']}={r['check'].get('reordered_vs_send_start')}" for r in m2x]
    lines.append("m2x reordered vs PUT start order (concurrent sends): " + " ".join(extra))
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--single", type=int, default=100, help="one-at-a-time messages each way")
    p.add_argument("--rate", type=float, default=20.0, help="sustained messages per second")
    p.add_argument("--seconds", type=float, default=10.0, help="sustained phase length")
    p.add_argument("--burst", type=int, default=200, help="burst size each way (0: skip)")
    p.add_argument("--concurrency", type=int, default=10, help="Matrix PUTs in flight at most")
    p.add_argument("--timeout", type=float, default=60.0, help="wait for stragglers (s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = p.parse_args()
    out = asyncio.run(run(args))
    print(json.dumps(out, indent=2) if args.json else table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
