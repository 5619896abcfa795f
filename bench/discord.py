"""Benchmark of the Discord connector end to end: fake Discord, real Synapse, the bridge alone.

    .venv/bin/python bench/discord.py --scale 0   # quick: 10 channels; a guild of 100
                                                  # channels and 5,000 members
    .venv/bin/python bench/discord.py             # 100 channels; a guild of 1,000 channels
                                                  # and 50,000 members, every channel a portal
    .venv/bin/python bench/discord.py --json      # machine-readable results

Discord cannot be reached, so the Discord side is ``tests/harness/discord_fake`` (a wire-level
fake: REST v10, webhooks, the gateway websocket) running in this process; the bridge runs as
``python -m bridgekit run -c config.yaml`` in a process of its own with a bot login whose guild
is bridged (as ``login discord bot`` and ``discord bridge-guild`` leave it), so its CPU time
and RSS are read from /proc/<pid>. The phases are bench/irc.py's (``irc_phases``), with the
Discord user in place of the IRC user; Matrix users reach Discord through the channel's
webhook (the Matrix user is the bot login's owner, relayed under their name).

* **End to end.** Discord->Matrix: the fake stores Bob's message and sends its MESSAGE_CREATE
  -> the Matrix user's own /sync returns the event. Matrix->Discord: the Matrix user's ``PUT
  /send`` starts -> the fake stores the bridge's webhook message.
* **Bridge-added** (as bench/irc.py): a packet capture on ``lo`` stamps each message where it
  enters and leaves the bridge, so the fake's and Synapse's own time is not in it.
  Discord->Matrix: from the fake's gateway frame to the bridge's ``PUT .../send`` to Synapse.
  Matrix->Discord: from Synapse's ``PUT /transactions`` to the bridge's webhook ``POST`` to the
  fake. **Service** excludes the wait behind the previous message of the same room.
* **lost / dup / reord** against the room history (Discord->Matrix, per channel) and against
  the room timeline (Matrix->Discord), never just arrival callbacks.
* **RSS** with the issue's guild: the bench guild holds ``--guild-channels`` channels and
  ``--members`` members from the start (the bot's GUILD_CREATE carries them all: discord.py
  keeps the channels; the bridge asks it to keep no members), then every channel gets a portal
  (one message in each); RSS is read settled before and after.

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
# Python puts this script's directory first on sys.path, and this script has the name of
# discord.py's package: load the real package before anything imports it by that name.
if sys.path and Path(sys.path[0] or ".").resolve() == REPO / "bench":
    sys.path.pop(0)
import discord  # noqa: E402, F401, I001 - the installed package, see above

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _stats import order_check, summary_ms  # noqa: E402
from bridge_state import wait_portals  # noqa: E402
from discord_sides import (  # noqa: E402
    BenchDiscord,
    DiscordUser,
    open_portals,
    store_bot_login,
)
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

from tests.harness.discord_fake import MANAGE_MESSAGES, MANAGE_WEBHOOKS  # noqa: E402


def sizes(args: argparse.Namespace) -> None:
    """--scale 0: a quick run; otherwise the issue's sizes (options given win)."""
    quick = args.scale == 0
    defaults = {
        "single": 30 if quick else 100,
        "seconds": 3 if quick else 10,
        "channels": 10 if quick else 100,
        "members": 5000 if quick else 50_000,
        "guild_channels": 100 if quick else 1000,
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

    # The fake is on loopback: no proxy.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)
    started = now()
    workdir = Path(tempfile.mkdtemp(prefix="bench-discord-"))
    report: dict[str, Any] = {
        "conditions": {
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "workdir": str(workdir),
        }
    }
    fake = BenchDiscord()
    fake.member_limit = 100  # GUILD_CREATE carries some members, as Discord's for a large guild
    await fake.start()
    bot = fake.add_bot("Bench Bot")
    bob = fake.add_user("bob", global_name="Bob Builder")
    guild = fake.add_guild("Bench", bob)
    role = fake.add_role(guild, "bridge", permissions=MANAGE_WEBHOOKS | MANAGE_MESSAGES)
    fake.add_member(guild, bot, roles=[role])
    main = fake.add_channel(guild, "bench")
    loads = [fake.add_channel(guild, f"load-{i:03d}") for i in range(args.channels)]
    t = now()
    for i in range(max(args.guild_channels - args.channels - 1, 0)):
        fake.add_channel(guild, f"many-{i:04d}")
    for i in range(max(args.members - 2, 0)):
        fake.add_member(guild, fake.add_user(f"member{i:05d}"))
    report["conditions"]["guild"] = {
        "channels": len(fake.guilds[guild.id].channels),
        "members": len(fake.guilds[guild.id].members),
        "built_s": round(now() - t, 1),
    }
    synapse = None
    env: Env | None = None
    try:
        benv = BridgeEnv(workdir)
        networks = {
            "discord": {
                "api_url": fake.api_url,
                "gateway_url": fake.gateway_url,
                "media_hosts": [fake.cdn_host],
            }
        }
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
        await store_bot_login(db_url, bot, guild, user.user_id)
        bridge = BridgeProcess(workdir, config_path, metrics_port)
        env = Env(args, workdir, None, synapse, bridge, benv, db_url, {})
        env.bob = DiscordUser(fake, bob, main)  # type: ignore[assignment]
        bridge.start()
        await bridge.wait_ready()
        await wait_for_bot(synapse, f"@bridgekitbot:{SERVER_NAME}")
        await wait_gateway(fake)
        report["conditions"]["bridge_rss_mib_connected"] = round(bridge.rss_kib() / 1024, 1)
        t = now()
        rooms = await open_portals(fake, user, bob, [main])
        load_rooms = await open_portals(fake, user, bob, loads)
        report["conditions"]["portals_open_s"] = round(now() - t, 1)
        await user.close()
        env.matrix = MatrixSide(synapse.base_url, user.user_id, user.access_token)
        await env.matrix.start(rooms[0], load_rooms)
        await warm_up(env)
        fake.prune()
        report["conditions"]["bridge_rss_mib_idle"] = round(bridge.rss_kib() / 1024, 1)
        roles = {"discord": fake.port, "hs": synapse.port, "as": benv.as_port}
        report["phases"] = await message_phases(env, fake, loads, roles, args, report)
        fake.prune()
        report["conditions"]["bridge_rss_mib_end"] = round(bridge.rss_kib() / 1024, 1)
        if args.portals:
            report["memory"] = await memory_phase(env, fake, guild, bob, db_path, args)
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
    fake: BenchDiscord,
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
            results.append(await phase_channels(env, loads, n_rate, args.rate))
    stamps: dict[str, float] = {}
    if sniffer is not None:
        stamps = sniffer.stop()
        env.sniffer = None
    added_seqs = {id(r): r.pop("_added_seqs") for r in results if "_added_seqs" in r}
    attach_capture(results, stamps, remote="discord")
    for r in results:
        if stamps and id(r) in added_seqs:
            added, _, legs = bridge_stamps(stamps, "I", added_seqs[id(r)], "discord")
            r["bridge_added_ms"] = summary_ms(added)
            # Synapse's answer to each send: where the wait is when it falls behind.
            r["legs_p50_ms"] = {k: summary_ms(v).get("p50") for k, v in legs.items()}
    for r in results:
        r["direction"] = r["direction"].replace("irc", "discord")
    return results


async def phase_channels(env: Env, channels: list[str], n: int, rate: float) -> dict[str, Any]:
    """Discord->Matrix at ``rate`` spread round-robin over ``channels`` (each its own portal)."""
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
        by_channel.setdefault(channel.id, []).append(s)
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


async def wait_gateway(fake: BenchDiscord, timeout: float = 120) -> None:
    """Until the bridge's bot has a live gateway session (its GUILD_CREATE sent)."""
    deadline = now() + timeout
    while not fake.identify_count:
        if now() > deadline:
            raise RuntimeError("the bridge's bot never opened its gateway session")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)


async def memory_phase(
    env: Env, fake: BenchDiscord, guild: Any, bob: Any, db_path: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """RSS with every channel of the big guild a portal (one message in each)."""
    assert env.matrix is not None
    out: dict[str, Any] = {}
    rss0 = await settle_rss(env.bridge)
    out["rss_mib_before"] = round(rss0 / 1024, 1)
    have = len(env.matrix.rooms)
    channels = [
        c
        for cid_ in fake.guilds[guild.id].channels
        if (c := fake.channels[cid_]).name[:5] == "many-"
    ]
    cpu0 = env.bridge.cpu()
    for channel in channels:
        await fake.send_message(channel, bob, "first words")
    count, took = await wait_portals(
        db_path, "discord", have + len(channels), stall=args.portal_stall
    )
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
        help="0: a quick run (30 single messages, 3 s of rate, 10 channels, a guild of 100 "
        "channels and 5,000 members); 1 (default): 100 single messages, 10 s, 100 channels, "
        "a guild of 1,000 channels and 50,000 members",
    )
    parser.add_argument("--single", type=int, help="messages one at a time, each way")
    parser.add_argument("--gap", type=float, default=0.3, help="pause between single messages")
    parser.add_argument("--rate", type=float, default=100, help="sustained rate (msg/s)")
    parser.add_argument("--seconds", type=float, help="length of each sustained phase")
    parser.add_argument("--channels", type=int, help="channels of the many-channel phase")
    parser.add_argument("--members", type=int, help="members of the bench guild")
    parser.add_argument("--guild-channels", type=int, help="channels of the bench guild")
    parser.add_argument(
        "--no-portals", dest="portals", action="store_false", help="skip the every-channel phase"
    )
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
        print_table(report, "discord", "Discord")


if __name__ == "__main__":
    main()
