"""Benchmark of the Slack connector end to end: the fake Slack, a real Synapse, the bridge alone.

    .venv/bin/python bench/slack.py --scale 0     # quick: ~2 min, 10 channels, 1,000 users
    .venv/bin/python bench/slack.py               # 100 channels, then 1,000 channels and
                                                  # 10,000 users known
    .venv/bin/python bench/slack.py --json        # machine-readable results

Slack cannot be reached, so the Slack side is ``tests/harness/slack_fake`` (a wire-level fake:
Web API, Socket Mode websocket) running in this process; the bridge runs as ``python -m
bridgekit run -c config.yaml`` in a process of its own with the workspace's app login (bot
token + app-level token, Socket Mode), so its CPU time and RSS are read from /proc/<pid>.
The phases are bench/irc.py's (``irc_phases``), with the Slack user in place of the IRC user.

* **End to end.** Slack->Matrix: the fake stores Bob's message and queues its Socket Mode
  envelope -> the Matrix user's own /sync returns the event. Matrix->Slack: the Matrix user's
  ``PUT /send`` starts -> the fake reads the bridge's ``chat.postMessage``.
* **Bridge-added** (as bench/irc.py): a packet capture on ``lo`` stamps each message where it
  enters and leaves the bridge, so the fake's and Synapse's own time is not in it.
  Slack->Matrix: from the fake's websocket frame carrying the envelope to the bridge's ``PUT
  .../send`` to Synapse (in between: the SDK's frame handling, the connector's conversion, the
  event stored in the outbox, the ack, the send). Matrix->Slack: from Synapse's ``PUT
  /transactions`` to the bridge's ``chat.postMessage`` to the fake. **Service** excludes the
  wait behind the previous message of the same room (the runtime keeps one room's events in
  order): it starts when the previous send was answered.
* **lost / dup / reord** against the room history (Slack->Matrix, per channel) and against the
  room timeline (Matrix->Slack), never just arrival callbacks.
* **RSS** with many channels and users known: ``--users`` Slack users the bridge learns through
  ``users.info`` (messages that mention 50 of them each), then ``--rss-channels`` channels that
  each get a portal (one message in each); RSS is read settled before and after.

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _stats import order_check, summary_ms  # noqa: E402
from bridge_state import wait_portals  # noqa: E402
from irc_capture import Sniffer  # noqa: E402
from irc_phases import (  # noqa: E402
    Env,
    add_cpu,
    attach_capture,
    bridge_stamps,
    drain,
    phase_irc_to_matrix,
    phase_matrix_to_irc,
    settle_rss,
    wait_for_bot,
    warm_up,
)
from irc_sides import MATRIX_USER, BridgeProcess, MatrixSide, now, text_for  # noqa: E402
from network_table import print_table  # noqa: E402
from slack_sides import (  # noqa: E402
    BenchSlack,
    SlackUser,
    open_portals,
    store_app_login,
)

MENTIONS_PER_MESSAGE = 50  # the connector resolves at most 50 mentions per message


def sizes(args: argparse.Namespace) -> None:
    """--scale 0: a quick run; otherwise the issue's sizes (options given win)."""
    quick = args.scale == 0
    defaults = {
        "single": 30 if quick else 100,
        "seconds": 3 if quick else 10,
        "channels": 10 if quick else 100,
        "users": 1000 if quick else 10_000,
        "rss_channels": 100 if quick else 1000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bridgekit.bridge import discover_connectors
    from bridgekit.config import Config
    from bridgekit.registration import generate
    from bridgekit.testing.ports import free_port
    from bridgekit.testing.synapse import SynapseServer
    from tests.conftest import SERVER_NAME, BridgeEnv

    # slack-sdk reads HTTP(S)_PROXY and ignores NO_PROXY: the fake is on loopback.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)
    started = now()
    workdir = Path(tempfile.mkdtemp(prefix="bench-slack-"))
    report: dict[str, Any] = {
        "conditions": {
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "workdir": str(workdir),
        }
    }
    fake = BenchSlack()
    await fake.start()
    team = fake.add_team("Bench", "bench")
    bob = fake.add_user(team.id, "bob", real_name="Bob Builder")
    main = fake.add_conversation(team.id, "bench", members=[bob.id])
    loads = [
        fake.add_conversation(team.id, f"load-{i:03d}", members=[bob.id])
        for i in range(args.channels)
    ]
    synapse = None
    env: Env | None = None
    try:
        benv = BridgeEnv(workdir)
        networks = {"slack": {"api_url": fake.api_url}}
        reg_config = Config.from_dict(benv.config_dict("sqlite:///unused.db", networks=networks))
        reg_path = workdir / "registration.yaml"
        generate(reg_config, discover_connectors(), reg_path)
        synapse = SynapseServer(workdir / "synapse", [reg_path], server_name=SERVER_NAME)
        t = now()
        synapse.start()
        report["conditions"]["synapse_start_s"] = round(now() - t, 1)
        benv.synapse = synapse
        metrics_port = free_port()
        db_path = workdir / "bridge.db"
        db_url = f"sqlite:///{db_path}"
        config = benv.config_dict(
            db_url,
            networks=networks,
            **{
                "logging.level": args.log_level,
                "metrics.enabled": True,
                "metrics.port": metrics_port,
                **({"bridge.event_loop": args.event_loop} if args.event_loop else {}),
            },
        )
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        user = await synapse.register_user(MATRIX_USER)
        await store_app_login(db_url, fake, team, user.user_id)
        bridge = BridgeProcess(workdir, config_path, metrics_port)
        env = Env(args, workdir, None, synapse, bridge, benv, db_url, {})
        env.bob = SlackUser(fake, bob.id, main.id)  # type: ignore[assignment]
        bridge.start()
        await bridge.wait_ready()
        await wait_for_bot(synapse, f"@bridgekitbot:{SERVER_NAME}")
        await fake.wait_until(lambda: fake.connected_sockets > 0, timeout=60)
        t = now()
        rooms = await open_portals(fake, user, bob.id, [main.id])
        load_rooms = await open_portals(fake, user, bob.id, [c.id for c in loads])
        report["conditions"]["portals_open_s"] = round(now() - t, 1)
        await user.close()
        env.matrix = MatrixSide(synapse.base_url, user.user_id, user.access_token)
        await env.matrix.start(rooms[0], load_rooms)
        await warm_up(env)
        fake.prune()
        report["conditions"]["bridge_rss_mib_idle"] = round(bridge.rss_kib() / 1024, 1)
        roles = {"slack": fake.port, "hs": synapse.port, "as": benv.as_port}
        report["phases"] = await message_phases(env, fake, loads, roles, args, report)
        fake.prune()
        report["conditions"]["bridge_rss_mib_end"] = round(bridge.rss_kib() / 1024, 1)
        if args.users or args.rss_channels:
            report["memory"] = await memory_phase(env, fake, team, bob.id, db_path, args)
        report["conditions"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        report["conditions"]["run_seconds"] = round(now() - started, 1)
        return report
    finally:
        if env is not None:
            if env.matrix is not None:
                await env.matrix.close()
            env.bridge.stop()
            if env.sniffer is not None:
                with contextlib.suppress(Exception):
                    env.sniffer.stop()
        if synapse is not None:
            synapse.stop()
        await fake.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


async def message_phases(
    env: Env,
    fake: BenchSlack,
    loads: list[Any],
    roles: dict[str, int],
    args: argparse.Namespace,
    report: dict[str, Any],
) -> list[dict[str, Any]]:
    sniffer = None
    if not args.no_capture:
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
    report["conditions"]["bridge_idle_cpu_pct"] = round(
        (env.bridge.cpu() - idle0) / (now() - t_idle) * 100, 2
    )
    if args.single:
        results.append(await phase_irc_to_matrix(env, "single", args.single, None, args.gap))
        results.append(await phase_matrix_to_irc(env, "single", args.single, None, args.gap))
    n_rate = int(args.rate * args.seconds)
    if n_rate:
        label = f"{args.rate:g}/s"
        fake.prune()
        results.append(await phase_irc_to_matrix(env, label, n_rate, args.rate, 0))
        await asyncio.sleep(1)
        fake.prune()
        results.append(await phase_matrix_to_irc(env, label, n_rate, args.rate, 0))
        await asyncio.sleep(1)
        if loads:
            fake.prune()
            results.append(await phase_channels(env, [c.id for c in loads], n_rate, args.rate))
    stamps: dict[str, float] = {}
    if sniffer is not None:
        stamps = sniffer.stop()
        env.sniffer = None
    added_seqs = {id(r): r.pop("_added_seqs") for r in results if "_added_seqs" in r}
    attach_capture(results, stamps, remote="slack")
    for r in results:
        if stamps and id(r) in added_seqs:
            added, _, legs = bridge_stamps(stamps, "I", added_seqs[id(r)], "slack")
            r["bridge_added_ms"] = summary_ms(added)
            # Synapse's answer to each send: where the wait is when it falls behind.
            r["legs_p50_ms"] = {k: summary_ms(v).get("p50") for k, v in legs.items()}
    for r in results:
        r["direction"] = r["direction"].replace("irc", "slack")
    return results


async def phase_channels(env: Env, channels: list[str], n: int, rate: float) -> dict[str, Any]:
    """Slack->Matrix at ``rate`` spread round-robin over ``channels`` (each its own portal)."""
    assert env.matrix is not None
    loop = asyncio.get_running_loop()
    seqs = [env.next_seq() for _ in range(n)]
    by_channel: dict[str, list[int]] = {}
    sent_at: dict[int, float] = {}
    futs = {}
    for s in seqs:
        futs[s] = env.matrix.expect[s] = loop.create_future()
    cpu0 = env.procs_cpu()
    start = now()
    for i, s in enumerate(seqs):
        delay = start + i / rate - now()
        if delay > 0:
            await asyncio.sleep(delay)
        channel = channels[i % len(channels)]
        by_channel.setdefault(channel, []).append(s)
        sent_at[s] = now()
        env.bob.send("", "", text_for("I", s), channel=channel)  # type: ignore[call-arg]
    await drain(list(futs.values()))
    end = max((env.matrix.arrivals.get(s, 0.0) for s in seqs), default=now())
    await asyncio.sleep(0.3)
    cpu1 = env.procs_cpu()
    for s in seqs:
        env.matrix.expect.pop(s, None)
    latencies = [env.matrix.arrivals[s] - sent_at[s] for s in seqs if s in env.matrix.arrivals]
    # Order per channel: each room's /sync timeline against that channel's send order.
    total = {"sent": n, "delivered": 0, "lost": 0, "duplicated": 0, "reordered": 0}
    owner = {s: c for c, ss in by_channel.items() for s in ss}
    seen_by_channel: dict[str, list[int]] = {}
    for room_order in env.matrix.order_by_room.values():
        for s in room_order:
            if s in owner:
                seen_by_channel.setdefault(owner[s], []).append(s)
    for channel, sent in by_channel.items():
        check = order_check(sent, seen_by_channel.get(channel, []))
        for key in ("delivered", "lost", "duplicated", "reordered"):
            total[key] += check[key]
    result: dict[str, Any] = {
        "phase": f"{rate:g}/s over {len(channels)} channels",
        "direction": "irc->matrix",
        "offered_rate": rate,
        "channels": len(channels),
        "latency_ms": summary_ms(latencies),
        "throughput": round(len(latencies) / max(end - start, 1e-9), 1),
        "check": total,
        "sync_limited": env.matrix.limited,
    }
    add_cpu(result, cpu0, cpu1, n)
    result["_seqs"] = []  # one room at a time is what bridge_stamps' service assumes
    result["_added_seqs"] = seqs
    return result


async def memory_phase(
    env: Env, fake: BenchSlack, team: Any, bob_id: str, db_path: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """RSS with ``--users`` users learned through users.info and ``--rss-channels`` portals."""
    assert env.matrix is not None
    out: dict[str, Any] = {}
    rss0 = await settle_rss(env.bridge)
    out["rss_mib_before"] = round(rss0 / 1024, 1)
    if args.users:
        users = [fake.add_user(team.id, f"user{i:05d}").id for i in range(args.users)]
        loop = asyncio.get_running_loop()
        seqs, futs = [], []
        cpu0, t0 = env.bridge.cpu(), now()
        for i in range(0, len(users), MENTIONS_PER_MESSAGE):
            s = env.next_seq()
            seqs.append(s)
            fut = env.matrix.expect[s] = loop.create_future()
            futs.append(fut)
            names = " ".join(f"<@{u}>" for u in users[i : i + MENTIONS_PER_MESSAGE])
            env.bob.send("", "", f"{text_for('I', s)} {names}")
            if len(futs) % 20 == 0:  # a few at a time: the fake answers users.info in this loop
                await drain(futs[-20:])
                fake.prune()
        await drain(futs)
        fake.prune()
        rss1 = await settle_rss(env.bridge)
        out.update(
            {
                "users": args.users,
                "user_messages": len(seqs),
                "users_s": round(now() - t0, 1),
                "users_cpu_s": round(env.bridge.cpu() - cpu0, 2),
                "users_delivered": sum(1 for s in seqs if s in env.matrix.arrivals),
                "users_order": order_check(seqs, [s for s in env.matrix.order if s in set(seqs)]),
                "rss_mib_users": round(rss1 / 1024, 1),
                "kib_per_user": round((rss1 - rss0) / args.users, 2),
            }
        )
        rss0 = rss1
    if args.rss_channels:
        have = len(env.matrix.rooms)
        more = max(args.rss_channels - have, 0)
        channels = [
            fake.add_conversation(team.id, f"many-{i:04d}", members=[bob_id]).id
            for i in range(more)
        ]
        cpu0, t0 = env.bridge.cpu(), now()
        for channel in channels:
            fake.post_user_message(channel, bob_id, "first words")
        count, took = await wait_portals(db_path, "slack", have + more, stall=args.portal_stall)
        fake.prune()
        rss1 = await settle_rss(env.bridge, 5.0)
        out.update(
            {
                "channels": count,
                "channels_s": round(took, 1),
                "channels_cpu_s": round(env.bridge.cpu() - cpu0, 2),
                "rss_mib_channels": round(rss1 / 1024, 1),
                "kib_per_channel": round((rss1 - rss0) / max(count - have, 1), 2),
            }
        )
    return out


# -- output -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="0: a quick run (~2 min: 30 single messages, 3 s of rate, 10 channels, 1,000 "
        "users, 100 portals); 1 (default): 100 single messages, 10 s, 100 channels, "
        "10,000 users, 1,000 portals",
    )
    parser.add_argument("--single", type=int, help="messages one at a time, each way")
    parser.add_argument("--gap", type=float, default=0.3, help="pause between single messages")
    parser.add_argument("--rate", type=float, default=100, help="sustained rate (msg/s)")
    parser.add_argument("--seconds", type=float, help="length of each sustained phase")
    parser.add_argument("--channels", type=int, help="channels of the many-channel phase")
    parser.add_argument("--users", type=int, help="Slack users the bridge learns (0: skip)")
    parser.add_argument("--rss-channels", type=int, help="portals for the RSS figure (0: skip)")
    parser.add_argument(
        "--portal-stall", type=float, default=60, help="give up on portals after s without one"
    )
    parser.add_argument("--no-capture", action="store_true", help="no packet capture")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--log-level", default="WARNING", help="the bridge's logging.level")
    parser.add_argument("--event-loop", choices=("auto", "uvloop", "asyncio"))
    args = parser.parse_args()
    sizes(args)
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, "slack", "Slack", users_via="users.info")


if __name__ == "__main__":
    main()
