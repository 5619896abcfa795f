"""The phases of bench/irc.py: latency and throughput each way, scale and fan-out, and the
set-up they share (Env: the servers, the bridge and the clients of one run)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.harness and tests.irc.e2e are not installed packages
sys.path.insert(0, str(REPO / "bench"))

from _stats import order_check, proc_cpu, summary_ms  # noqa: E402
from irc_capture import Sniffer  # noqa: E402
from irc_sides import (  # noqa: E402
    CHANNEL,
    IRC_NICK,
    BridgeProcess,
    MatrixSide,
    RawIrc,
    events_carrying,
    markers_in,
    now,
    proc_nofile,
    proc_status,
    text_for,
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
    #: The IRC channel of the portal the phases run in (``--encrypted`` has two).
    channel: str = CHANNEL

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
    stamps: dict[str, float], kind: str, seqs: list[int], remote: str = "ircd"
) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """(bridge-added, bridge service, other legs) in seconds, from the capture. ``remote`` is
    the capture's role name of the network's server (bench/slack.py: its fake Slack)."""
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
            rx, tx = t(seq, f"{remote}>x"), t(seq, "x>hs")
            done = t(seq, "resp>hs")
            leg("irc_client_to_ircd_out", t(seq, "bob>ircd"), rx)
            leg("synapse_send", tx, done)
            leg("synapse_to_sync", tx, t(seq, "hs>x"))
        else:
            rx, tx = t(seq, "x>as"), t(seq, f"x>{remote}")
            done = t(seq, f"{remote}>x")  # the echo-message confirmation (Slack: the answer)
            leg("client_send_to_as_push", t(seq, "x>hs"), rx)
            leg("bridge_ack", rx, t(seq, "resp>as"))
            leg(f"{remote}_echo", tx, done)
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
        env.bob.send("PRIVMSG", env.channel, text_for("I", s))
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


def attach_capture(
    results: list[dict[str, Any]], stamps: dict[str, float], remote: str = "ircd"
) -> None:
    for r in results:
        seqs = r.pop("_seqs", [])
        if not stamps:
            continue
        kind = "M" if r["direction"].startswith("matrix->") else "I"
        added, service, legs = bridge_stamps(stamps, kind, seqs, remote)
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
            room_id = str(await user.join(alias(env.channel)))
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
    from bridgekit.database.db import create_database
    from bridgekit.database.store import BridgeUser, Store
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
