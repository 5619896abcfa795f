"""heisenbridge, a competing Matrix<->IRC bridge, under bench/irc.py's harness and phases.

    python -m venv /tmp/hbvenv && /tmp/hbvenv/bin/pip install heisenbridge==1.15.4
    .venv/bin/python bench/heisenbridge.py           # table
    .venv/bin/python bench/heisenbridge.py --json    # machine-readable results
    .venv/bin/python bench/heisenbridge.py --users 100   # then RSS per more Matrix user

heisenbridge is not a dependency of this project: it lives in a venv of its own
(``--heisenbridge-python``, default /tmp/hbvenv/bin/python) and runs as its own process,
``python -m heisenbridge -c registration.yaml -l 127.0.0.1 -p PORT -o OWNER HOMESERVER`` at its
default log level (WARNING), so its CPU time and RSS are read from /proc/<pid> as bench/irc.py
does for ``bridgekit run``. Synapse (SQLite) and InspIRCd (flood control off) are started as in
bench/irc.py; Synapse knows only heisenbridge's registration (made by its ``--generate``).

heisenbridge is a bouncer: the Matrix owner gets an IRC connection of its own. It is set up as a
user would: the owner joins the control room the bridge opens for it (``-o``), sends
``ADDNETWORK``, ``ADDSERVER``, ``OPEN``, joins the network room, sends ``NICK``, ``CONNECT``,
``JOIN #bench`` there and joins the channel room it is invited to. A raw IRC client (``benchbob``)
is in the channel; its lines reach the channel room from heisenbridge's puppet of it, the owner's
messages reach the channel as PRIVMSG from the owner's nick.

The phases are bench/irc.py's own functions (``phase_irc_to_matrix``, ``phase_matrix_to_irc``):
end to end latency, bridge and Synapse CPU per message, lost/duplicated/reordered markers from the
room history and the lines the IRC client read, bridge-added latency from a packet capture on
``lo`` (when CAP_NET_RAW allows). What differs, by heisenbridge's design, not the harness's:

* IRC->Matrix lines are buffered 100 ms and the lines of one sender that arrive within 100 ms of
  each other (up to 1 s) are merged into one event: messages are counted by their markers,
  "events" is how many Matrix events carried them.
* Matrix->IRC lines go through a send queue that sleeps 1.5 s after each line once more than
  ~5 lines went out within a second each. A phase waits at most ``--drain-timeout`` s after its
  last send; what is still queued then is removed with the channel room's ``STOP`` command and
  reported as "unsent" (and counted as lost).
* CPU per message is over the whole phase window; with 1.5 s per line that window is long, so
  the idle CPU (measured for ``--idle-seconds`` first) times the window is also subtracted
  ("net" columns).

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent


def _load_bench_irc() -> Any:
    """bench/irc.py by path: the name ``irc`` is taken by the ``irc`` package in the venv."""
    spec = importlib.util.spec_from_file_location("bench_irc", BENCH / "irc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_irc"] = module
    spec.loader.exec_module(module)
    return module


bench_irc = _load_bench_irc()  # puts bench/ on sys.path for its parts, imported below
import heisenbridge_scale  # noqa: E402
import irc_capture  # noqa: E402
import irc_phases  # noqa: E402
import irc_sides  # noqa: E402

now = irc_sides.now
CHANNEL = irc_sides.CHANNEL
NETWORK = "bench"
IRC_NICK_MX = "benchmx"  # the owner's nick on IRC
DEFAULT_PYTHON = "/tmp/hbvenv/bin/python"


# -- the heisenbridge process -----------------------------------------------------------------


def hb_env() -> dict[str, str]:
    """The environment for the other venv's interpreter: nothing of ours on its path."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    return env


class HeisenbridgeProcess(irc_sides.BridgeProcess):
    """``python -m heisenbridge`` in its own venv; pid, cpu(), rss_kib() and stop() inherited."""

    def __init__(
        self, python: str, workdir: Path, reg_path: Path, port: int, owner: str, hs_url: str
    ) -> None:
        super().__init__(workdir, reg_path, port)
        self.python = python
        self.owner = owner
        self.hs_url = hs_url
        self.log_path = workdir / "heisenbridge.log"

    def command(self) -> list[str]:
        return [
            self.python,
            "-m",
            "heisenbridge",
            "-c",
            str(self.config_path),
            "-l",
            "127.0.0.1",
            "-p",
            str(self.metrics_port),
            "-o",
            self.owner,
            self.hs_url,
        ]

    def env(self) -> dict[str, str]:
        # The work directory is the cwd (not inside the package: its irc.py would shadow irc).
        return hb_env()

    async def get(self, path: str) -> Any:
        # No metrics endpoint: irc_phases.scrape() gets nothing, without touching the bridge.
        raise RuntimeError("heisenbridge has no metrics endpoint")

    async def wait_ready(self, timeout: float = 60) -> None:
        """Its appservice listener accepts connections (it listens once logged in)."""
        deadline = now() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"heisenbridge exited ({self.proc.returncode}); see {self.log_path}"
                )
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.metrics_port), timeout=1).close()
                return
            if now() > deadline:
                raise RuntimeError(f"heisenbridge not listening; see {self.log_path}")
            await asyncio.sleep(0.1)


def generate_registration(python: str, path: Path, port: int) -> dict[str, Any]:
    """heisenbridge's own ``--generate`` (Synapse flavour): url, tokens, @irc_.* namespace."""
    subprocess.run(
        [python, "-m", "heisenbridge", "-c", str(path), "--generate", "-l", "127.0.0.1"]
        + ["-p", str(port)],
        cwd=path.parent,
        env=hb_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return dict(yaml.safe_load(path.read_text()))


def heisenbridge_version(python: str) -> str:
    out = subprocess.run(
        [python, "-m", "heisenbridge", "--version"],
        cwd=tempfile.gettempdir(),
        env=hb_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


# -- set-up through heisenbridge's Matrix commands --------------------------------------------


def body_of(event: dict[str, Any]) -> str:
    body = event.get("content", {}).get("body")
    return body if isinstance(body, str) else ""


async def command(
    client: Any, room_id: str, text: str, expect: str, bot: str, timeout: float = 30
) -> str:
    """Send ``text`` to a bridge room; wait for a new message from the bot containing ``expect``."""
    seen = {e.get("event_id") for e in client.history(room_id)}
    pattern = re.compile(expect, re.I)
    await client.send_text(room_id, text)
    event = await client.wait_for_event(
        room_id,
        lambda e: (
            e.get("event_id") not in seen
            and e.get("sender") == bot
            and bool(pattern.search(body_of(e)))
        ),
        timeout=timeout,
    )
    return body_of(event)


async def invited_room(client: Any, bot: str, timeout: float = 60) -> str:
    """Join the next room the bot invites the owner to; return its id."""
    while True:
        room_id, inviter = await client.wait_for_invite(timeout=timeout)
        if inviter == bot:
            await client.join(room_id)
            return str(room_id)


async def set_up_bridge(env: HbEnv, owner: Any, bot: str) -> dict[str, str]:
    """Control room -> network -> server -> network room -> NICK, CONNECT, JOIN -> channel room."""
    control = await invited_room(owner, bot)
    # The bot's help is posted once the room is registered: commands before it may be lost.
    await owner.wait_for_event(control, lambda e: e.get("sender") == bot, timeout=60)
    ircd = env.ircd
    await command(owner, control, f"ADDNETWORK {NETWORK}", "Network added", bot)
    await command(
        owner, control, f"ADDSERVER {NETWORK} {ircd.host} {ircd.port}", "Server added", bot
    )
    await command(owner, control, f"OPEN {NETWORK}", "invited", bot)
    network = await invited_room(owner, bot)
    await owner.wait_for_event(network, lambda e: e.get("sender") == bot, timeout=60)
    await command(owner, network, f"NICK {IRC_NICK_MX}", "Nickname set", bot)
    await command(owner, network, "CONNECT", r"Welcome to", bot, timeout=60)
    await owner.send_text(network, f"JOIN {CHANNEL}")
    channel = await invited_room(owner, bot)
    await env.bob.wait_for(lambda m: m.command == "JOIN" and m.nick == IRC_NICK_MX, 30)
    return {"control": control, "network": network, "channel": channel}


# -- the benchmark ----------------------------------------------------------------------------


@dataclass
class HbEnv(irc_phases.Env):
    """bench/irc.py's Env, noting when each CPU reading was taken (for the idle correction)."""

    cpu_stamps: list[float] = field(default_factory=list)

    def procs_cpu(self) -> dict[str, float]:
        cpu = super().procs_cpu()
        self.cpu_stamps.append(now())
        return cpu


async def measure_idle(env: HbEnv, seconds: float) -> dict[str, float]:
    """CPU fraction of a core, per process, with nothing to bridge."""
    cpu0, t0 = env.procs_cpu(), now()
    await asyncio.sleep(seconds)
    cpu1, t1 = env.procs_cpu(), now()
    return {k: (cpu1[k] - cpu0[k]) / (t1 - t0) for k in cpu1 if k in cpu0}


async def stop_queue(env: HbEnv) -> int | None:
    """The channel room's STOP: drop the lines still in the send queue; how many were."""
    assert env.matrix is not None
    await env.matrix.send("heisenbridge STOP")
    found = re.compile(r"(\d+) messages removed from queue")
    deadline = now() + 30
    while now() < deadline:
        history = await env.matrix.history(20)
        after = False
        for evt in history:
            body = body_of(evt)
            if body == "heisenbridge STOP":
                after = True
            elif after and (m := found.search(body)):
                return int(m.group(1))
        await asyncio.sleep(0.2)
    return None


async def run_phase(
    env: HbEnv, idle: dict[str, float], direction: str, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    phase = irc_phases.phase_irc_to_matrix if direction == "i2m" else irc_phases.phase_matrix_to_irc
    first = len(env.cpu_stamps)
    result = await phase(env, *args, **kwargs)
    window = env.cpu_stamps[first + 1] - env.cpu_stamps[first]
    n = args[1]
    cpu = result["cpu_ms_per_msg"]
    for name in ("bridge", "synapse"):
        if name in cpu and name in idle:
            cpu[f"{name}_net"] = round(cpu[name] - idle[name] * window / n * 1000, 3)
    result["cpu_window_s"] = round(window, 2)
    for key in ("metrics_remote_handling_ms", "metrics_matrix_handling_ms"):
        result.pop(key, None)  # bridgekit's Prometheus histogram; heisenbridge has none
    if direction == "m2i" and result["check"]["delivered"] < n:
        result["unsent_stopped"] = await stop_queue(env)
    return result


async def phases(
    env: HbEnv, roles: dict[str, int], args: argparse.Namespace, report: dict[str, Any]
) -> list[dict[str, Any]]:
    """bench/irc.py's latency_phases, plus the bounded wait and the queue STOP."""
    sniffer = None
    if not args.no_capture:
        sniffer = irc_capture.Sniffer(roles)
        if sniffer.start():
            env.sniffer = sniffer
            report["conditions"]["capture"] = "AF_PACKET on lo" + (
                " with BPF" if sniffer.bpf else ""
            )
        else:
            report["conditions"]["capture"] = f"unavailable: {sniffer.error}"
            sniffer = None
    idle = report["_idle"]
    limit = args.drain_timeout
    results = []
    i2m = args.direction in ("both", "irc-to-matrix")
    m2i = args.direction in ("both", "matrix-to-irc")
    if args.single:
        if i2m:
            results.append(await run_phase(env, idle, "i2m", "single", args.single, None, args.gap))
        if m2i:
            results.append(await run_phase(env, idle, "m2i", "single", args.single, None, args.gap))
    n_rate = int(args.rate * args.seconds)
    if n_rate:
        label = f"{args.rate:g}/s"
        if i2m:
            results.append(await run_phase(env, idle, "i2m", label, n_rate, args.rate, 0))
            await asyncio.sleep(1)
        if m2i:
            results.append(
                await run_phase(env, idle, "m2i", label, n_rate, args.rate, 0, drain_limit=limit)
            )
            await asyncio.sleep(1)
    if args.burst:
        if i2m:
            results.append(await run_phase(env, idle, "i2m", "burst", args.burst, 0, 0))
            await asyncio.sleep(1)
        if m2i:
            results.append(
                await run_phase(env, idle, "m2i", "burst", args.burst, 0, 0, drain_limit=limit)
            )
    stamps: dict[str, float] = {}
    if sniffer is not None:
        stamps = sniffer.stop()
        env.sniffer = None
    irc_phases.attach_capture(results, stamps)
    return results


async def senders(env: HbEnv, bot: str) -> dict[str, int]:
    """Who posted the events carrying IRC lines: the puppet (m.text) or the bot's fallback."""
    assert env.matrix is not None
    out: dict[str, int] = {}
    for evt in await env.matrix.history(env.seq + 500):
        if irc_sides.markers_in([evt], "I"):
            sender = str(evt.get("sender"))
            who = "bot" if sender == bot else "puppet" if sender.startswith("@irc_") else sender
            key = f"{who} {evt.get('content', {}).get('msgtype')}"
            out[key] = out.get(key, 0) + 1
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bridgekit.testing.ports import free_port
    from bridgekit.testing.synapse import SynapseServer
    from tests.harness.inspircd import InspIRCd
    from tests.irc.e2e import DOMAIN

    started = now()
    workdir = Path(tempfile.mkdtemp(prefix="bench-heisenbridge-"))
    report: dict[str, Any] = {
        "conditions": {
            "bridge": f"heisenbridge {heisenbridge_version(args.heisenbridge_python)}",
            "heisenbridge_python": args.heisenbridge_python,
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "workdir": str(workdir),
            "log_level": "default (WARNING, no -v)",
        }
    }
    ircd = InspIRCd(workdir / "ircd", flood_control=False)
    synapse = None
    bridge = None
    env: HbEnv | None = None
    owner = None
    try:
        ircd.start()
        as_port = free_port()
        reg_path = workdir / "registration.yaml"
        registration = generate_registration(args.heisenbridge_python, reg_path, as_port)
        bot = f"@{registration['sender_localpart']}:{DOMAIN}"
        synapse = SynapseServer(workdir / "synapse", [reg_path], server_name=DOMAIN)
        t = now()
        synapse.start()
        report["conditions"]["synapse_start_s"] = round(now() - t, 1)
        owner = await synapse.register_user(irc_sides.MATRIX_USER)
        bridge = HeisenbridgeProcess(
            args.heisenbridge_python, workdir, reg_path, as_port, owner.user_id, synapse.base_url
        )
        env = HbEnv(args, workdir, ircd, synapse, bridge, None, "", {})
        env.bob_port = await env.bob.connect(ircd.host, ircd.port)
        await env.bob.join(CHANNEL)
        bridge.start()
        await bridge.wait_ready()
        rooms = await set_up_bridge(env, owner, bot)
        if args.users:
            await heisenbridge_scale.allow_users(owner, rooms["control"], bot, DOMAIN, command)
        report["conditions"]["setup_s"] = round(now() - started, 1)
        env.matrix = irc_sides.MatrixSide(synapse.base_url, owner.user_id, owner.access_token)
        await owner.close()
        owner = None
        await env.matrix.start(rooms["channel"])
        env.bob.keep_lines = True
        await asyncio.sleep(2)  # the channel room's member sync
        await irc_phases.warm_up(env)
        await asyncio.sleep(2)
        idle = await measure_idle(env, args.idle_seconds)
        report["_idle"] = idle
        report["conditions"]["bridge_idle_cpu_pct"] = round(idle["bridge"] * 100, 3)
        report["conditions"]["synapse_idle_cpu_pct"] = round(idle.get("synapse", 0) * 100, 3)
        report["conditions"]["bridge_rss_mib_idle"] = round(bridge.rss_kib() / 1024, 1)

        roles = {"ircd": ircd.port, "hs": synapse.port, "as": as_port, "bob": env.bob_port}
        report["phases"] = await phases(env, roles, args, report)
        report["conditions"]["i2m_events_by_sender"] = await senders(env, bot)
        report["conditions"]["bridge_rss_mib_end"] = round(bridge.rss_kib() / 1024, 1)
        report["conditions"]["bridge_peak_rss_mib"] = round(
            irc_sides.proc_status(bridge.pid, "VmHWM") / 1024, 1
        )
        if args.users:
            k = min(args.join_users, args.users)
            users = await heisenbridge_scale.users_phase(
                env, args.users, k, bot, NETWORK, command, invited_room
            )
            if args.users_messages:
                await irc_phases.warm_up(env)
                users["latency"] = await run_phase(
                    env, idle, "i2m", "single, users up", args.users_messages, None, args.gap
                )
            report["users"] = users
        report["conditions"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        report["conditions"]["run_seconds"] = round(now() - started, 1)
        report["conditions"]["config"] = {
            "drain_timeout_s": args.drain_timeout,
            "idle_seconds": args.idle_seconds,
            "database": "none (heisenbridge keeps its state in Synapse account data)",
        }
        report.pop("_idle", None)
        return report
    finally:
        if owner is not None:
            with contextlib.suppress(Exception):
                await owner.close()
        if env is not None:
            if env.matrix is not None:
                await env.matrix.close()
            if env.bob.transport is not None:
                env.bob.transport.close()
            if env.sniffer is not None:
                with contextlib.suppress(Exception):
                    env.sniffer.stop()
        if bridge is not None:
            bridge.stop()
        if synapse is not None:
            synapse.stop()
        ircd.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# -- output -----------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    fmt = bench_irc.fmt
    c = report["conditions"]
    users = report.get("users")
    phases = list(report.get("phases", []))
    if users and users.get("latency"):
        phases.append(users["latency"])
    print(
        f"bench/heisenbridge.py: real Synapse (SQLite) + InspIRCd (flood control off) + "
        f"{c.get('bridge')} in its own process, log level {c.get('log_level')}; "
        f"{c.get('cpus')} CPUs, load {c.get('loadavg_start')} -> {c.get('loadavg_end')}, "
        f"{c.get('run_seconds')} s"
    )
    print(
        f"idle: bridge {c.get('bridge_idle_cpu_pct')}% of a core, Synapse "
        f"{c.get('synapse_idle_cpu_pct')}%; bridge RSS {c.get('bridge_rss_mib_idle')} MiB idle, "
        f"{c.get('bridge_rss_mib_end')} MiB at the end (peak {c.get('bridge_peak_rss_mib')}); "
        f"capture: {c.get('capture', 'off')}"
    )
    print(f"events carrying IRC lines, by sender and msgtype: {c.get('i2m_events_by_sender')}")
    print(
        f"{'':22}{'n':>5}{'p50':>8}{'p95':>8}{'max':>8} ms{'msg/s':>7}{'lost':>5}{'reord':>6}"
        f"{'dup':>4}{'events':>7}  CPU ms/msg: bridge (net of idle), synapse (net)"
    )
    for r in phases:
        arrow = "IRC->Matrix" if r["direction"] == "irc->matrix" else "Matrix->IRC"
        lat, chk, cpu = r["latency_ms"], r["check"], r["cpu_ms_per_msg"]
        extra = ""
        if r.get("unsent_stopped") is not None:
            extra = f"; {r['unsent_stopped']} still queued, STOPped"
        print(
            f"{arrow + ' ' + r['phase']:22}{chk['sent']:>5}{fmt(lat.get('p50'), 8)}"
            f"{fmt(lat.get('p95'), 8)}{fmt(lat.get('max'), 8)}   {fmt(r.get('throughput'), 7)}"
            f"{chk['lost']:>5}{chk['reordered']:>6}{chk['duplicated']:>4}"
            f"{fmt(r.get('matrix_events'), 7)}  {cpu.get('bridge', 0):.2f} "
            f"({cpu.get('bridge_net', 0):.2f}), {cpu.get('synapse', 0):.2f} "
            f"({cpu.get('synapse_net', 0):.2f}) over {r['cpu_window_s']} s{extra}"
        )
        for key, label in (("bridge_added_ms", "bridge-added"), ("bridge_service_ms", "  service")):
            b = r.get(key)
            if b and b.get("n"):
                print(
                    f"{'  ' + label:22}{b['n']:>5}{fmt(b.get('p50'), 8)}{fmt(b.get('p95'), 8)}"
                    f"{fmt(b.get('max'), 8)}"
                )
    if users:
        print(
            f"users: {users['users']} more ({users['in_channel']} in the channel), set up in "
            f"{users['setup_s']} s; fresh-process RSS {users['baseline_rss_mib']} MiB (owner "
            f"alone) -> {users['rss_mib']} MiB (peak {users['peak_rss_mib']}, reconnected in "
            f"{users['reconnect_s']} s) = {users['kib_per_user']} KiB per user; "
            f"{users['rss_mib_after_setup']} MiB right after the set-up"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_irc.add_phase_arguments(parser, burst=0)
    parser.add_argument(
        "--heisenbridge-python",
        default=DEFAULT_PYTHON,
        help="interpreter of the venv heisenbridge is installed in",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60,
        help="wait at most this long after the last Matrix->IRC send of a rate/burst phase",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=10, help="idle CPU measured over this long first"
    )
    parser.add_argument(
        "--users", type=int, default=0, help="then set up this many more Matrix users (0: skip)"
    )
    parser.add_argument(
        "--join-users", type=int, default=0, help="how many of --users also join the channel"
    )
    parser.add_argument(
        "--users-messages",
        type=int,
        default=30,
        help="single IRC->Matrix messages with the --users connected",
    )
    args = parser.parse_args()
    if not Path(args.heisenbridge_python).exists():
        parser.error(f"{args.heisenbridge_python} not found; see the module docstring")
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
