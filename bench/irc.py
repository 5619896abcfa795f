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
* **Encrypted** (``--encrypted``): the same phases twice in one run, first in a plaintext
  portal, then in an encrypted one (the bridge restarted with ``encryption.default`` on), the
  Matrix user a real E2EE client (matrix-nio) in both, and the bridge's crypto backend calls
  timed (bench/crypto_timing.py): the difference of the two is what encryption costs.
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
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
#: The channel of the encrypted portal (``--encrypted``; the plaintext one is CHANNEL).
ENCRYPTED_CHANNEL = "#benchenc"
#: The pickle key of the bridge's crypto store (``--encrypted``; a throwaway database).
PICKLE_KEY = "bench-pickle-key"
sys.path.insert(0, str(REPO))  # tests.harness and tests.irc.e2e are not installed packages
sys.path.insert(0, str(REPO / "bench"))

from irc_capture import Sniffer  # noqa: E402
from irc_e2ee import NioMatrixSide, TimedBridgeProcess, crypto_summary  # noqa: E402
from irc_phases import (  # noqa: E402
    Env,
    attach_capture,
    fanout_phase,
    open_portal,
    phase_irc_to_matrix,
    phase_matrix_to_irc,
    restart_bridge,
    scale_phase,
    wait_for_bot,
    wait_puppet_join,
    warm_up,
)
from irc_sides import (  # noqa: E402
    BRIDGE_PYTHON,
    CHANNEL,
    MATRIX_USER,
    PROFILE_ARGS,
    BridgeProcess,
    MatrixSide,
    now,
    proc_nofile,
    raise_nofile,
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bridgekit.bridge import discover_connectors
    from bridgekit.config import Config
    from bridgekit.registration import generate
    from bridgekit.testing.ports import free_port
    from bridgekit.testing.synapse import SynapseServer
    from tests.conftest import BridgeEnv
    from tests.harness.inspircd import InspIRCd
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
    nio_side = None
    try:
        ircd.start()
        benv = BridgeEnv(workdir)
        # --encrypted: the registration asks for MSC2409/3202/4190, the bot is apart from the
        # sender_localpart (tests/conftest.py does the same for the tests' Synapse).
        crypto = {"allow": True, "default": False, "pickle_key": PICKLE_KEY}
        crypto_reg = {"encryption": crypto} if args.encrypted else {}
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
        reg_config = Config.from_dict(
            benv.config_dict("sqlite:///unused.db", networks=section, **crypto_reg)
        )
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
                **({"bridge.event_loop": args.event_loop} if args.event_loop else {}),
            },
            **crypto_reg,
        )
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        bridge_class = TimedBridgeProcess if args.encrypted else BridgeProcess
        bridge = bridge_class(workdir, config_path, metrics_port)
        env = Env(args, workdir, ircd, synapse, bridge, benv, db_url, section["irc"])
        bridge.start()
        await bridge.wait_ready()
        await wait_for_bot(synapse, f"@bridgekitbot:{DOMAIN}")
        report["conditions"]["bridge_nofile"] = proc_nofile(bridge.pid)

        env.bob_port = await env.bob.connect(ircd.host, ircd.port)
        await env.bob.join(CHANNEL)
        user = await synapse.register_user(MATRIX_USER)
        room_id = await open_portal(env, user)
        if args.encrypted:
            env.matrix = nio_side = NioMatrixSide(  # type: ignore[assignment]
                synapse.base_url, user.user_id, workdir / "nio"
            )
            await nio_side.login()
        else:
            await user.close()
            env.matrix = MatrixSide(synapse.base_url, user.user_id, user.access_token)
        await env.matrix.start(room_id)
        env.bob.keep_lines = True
        await warm_up(env)

        roles = {"ircd": ircd.port, "hs": synapse.port, "as": benv.as_port, "bob": env.bob_port}
        report["conditions"]["bridge_rss_mib_idle"] = round(env.bridge.rss_kib() / 1024, 1)
        results = await latency_phases(env, roles, args, report)
        report["phases"] = results
        if args.encrypted:
            assert nio_side is not None
            config["encryption"]["default"] = True
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            report["encrypted"] = await encrypted_portal(env, user, nio_side, roles, args, report)
            await user.close()
        report["conditions"]["bridge_rss_mib_end"] = round(env.bridge.rss_kib() / 1024, 1)
        if args.scale > 0 and not args.encrypted:
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
        if nio_side is not None:
            await nio_side.close()
            env.matrix = None  # type: ignore[union-attr]
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


async def encrypted_portal(
    env: Env,
    user: Any,
    nio_side: NioMatrixSide,
    roles: dict[str, int],
    args: argparse.Namespace,
    report: dict[str, Any],
) -> dict[str, Any]:
    """The same phases in an encrypted portal: the bridge restarted with
    ``encryption.default`` on (the config was rewritten), a second channel, its new portal
    joined through the alias as the first was."""
    seen = len(env.bob.puppet_joins)
    await restart_bridge(env)
    await wait_puppet_join(env, seen)  # the Matrix user's puppet back in the first channel
    env.channel = ENCRYPTED_CHANNEL
    await env.bob.join(env.channel)
    room_id = await open_portal(env, user)
    await nio_side.wait_encrypted(room_id)
    await nio_side.start(room_id)
    await warm_up(env)
    phases = await latency_phases(env, roles, args, report)
    return {
        "room_id": room_id,
        "channel": env.channel,
        "phases": phases,
        # Markers the client never decrypted, and encrypted events of the history it could not.
        "undecrypted": len(nio_side.undecrypted) + nio_side.history_undecrypted,
    }


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
        sniffer = Sniffer(roles, event_ids=bool(getattr(args, "encrypted", False)))
        if sniffer.start():
            env.sniffer = sniffer
            report["conditions"]["capture"] = "AF_PACKET on lo" + (
                " with BPF" if sniffer.bpf else ""
            )
        else:
            report["conditions"]["capture"] = f"unavailable: {sniffer.error}"
            sniffer = None
    results: list[dict[str, Any]] = []
    timed = getattr(env.bridge, "crypto_calls", None)  # --encrypted: the backend's calls

    async def phase(fn: Any, *params: Any) -> None:
        before = await timed() if timed is not None else None
        result = await fn(env, *params)
        if timed is not None:
            result["crypto"] = crypto_summary(before, await timed(), result["check"]["sent"])
        results.append(result)

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
            await phase(phase_irc_to_matrix, "single", n_single, None, args.gap)
        if m2i:
            await phase(phase_matrix_to_irc, "single", n_single, None, args.gap)
    if single_only and irc_rate_too and args.rate and args.seconds:
        # IRC -> Matrix at the sustained rate, here with many connections hearing each line.
        await asyncio.sleep(1)
        label = f"{args.rate:g}/s"
        n_rate = int(args.rate * args.seconds)
        await phase(phase_irc_to_matrix, label, n_rate, args.rate, 0)
    if not single_only:
        n_rate = int(args.rate * args.seconds)
        if n_rate:
            label = f"{args.rate:g}/s"
            if i2m:
                await phase(phase_irc_to_matrix, label, n_rate, args.rate, 0)
                await asyncio.sleep(1)
            if m2i:
                await phase(phase_matrix_to_irc, label, n_rate, args.rate, 0)
                await asyncio.sleep(1)
        if args.burst:
            if i2m:
                await phase(phase_irc_to_matrix, "burst", args.burst, 0, 0)
                await asyncio.sleep(1)
            if m2i:
                await phase(phase_matrix_to_irc, "burst", args.burst, 0, 0)
    stamps: dict[str, float] = {}
    if sniffer is not None:
        stamps = sniffer.stop()
        env.sniffer = None
        translate = getattr(env.matrix, "translate_stamps", None)
        if translate is not None:  # --encrypted: the Matrix side's legs keyed by event id
            stamps = translate(stamps)
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
    print_encrypted(report)
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


def print_encrypted(report: dict[str, Any]) -> None:
    """The encrypted portal's phases, the backend's calls, and the difference to the
    plaintext portal of the same run (same bridge config, same client)."""
    enc = report.get("encrypted")
    if not enc:
        return
    print()
    print(f"encrypted portal ({enc['channel']}), the same phases; matrix-nio client in both:")
    print_phases(enc["phases"])
    print()
    print(
        f"{'crypto cost':22}{'bridge-added p50':>18}{'p99':>9}{'bridge CPU ms/msg':>19}"
        "  the backend's call: n, p50, p99 ms, loop CPU"
    )
    plain = {(r["direction"], r["phase"]): r for r in report.get("phases", [])}
    for r in enc["phases"]:
        p = plain.get((r["direction"], r["phase"]))
        if p is None:
            continue
        arrow = "IRC->Matrix" if r["direction"] == "irc->matrix" else "Matrix->IRC"
        op = "encrypt" if r["direction"] == "irc->matrix" else "decrypt"
        added_e, added_p = r.get("bridge_added_ms") or {}, p.get("bridge_added_ms") or {}

        cpu_e = r["cpu_ms_per_msg"].get("bridge", 0.0)
        cpu_p = p["cpu_ms_per_msg"].get("bridge", 0.0)
        call = (r.get("crypto") or {}).get(op) or {}
        wall = call.get("wall_ms") or {}
        print(
            f"{arrow + ' ' + r['phase']:22}{delta(added_e.get('p50'), added_p.get('p50')):>18}"
            f"{delta(added_e.get('p99'), added_p.get('p99')):>9}"
            f"{cpu_e - cpu_p:>+12.3f} ({cpu_p:.2f}->{cpu_e:.2f})"
            f"  {op} {call.get('calls', 0)}, {fmt(wall.get('p50'), 0)}, {fmt(wall.get('p99'), 0)}"
            f" ms, {call.get('loop_cpu_ms_per_msg', 0):.3f} ms/msg"
        )


def delta(a: Any, b: Any) -> str:
    ok = isinstance(a, int | float) and isinstance(b, int | float)
    return f"{a - b:+.2f}" if ok else "-"


def encrypted_problems(report: dict[str, Any]) -> list[str]:
    """What makes an encrypted run fail: a message lost, duplicated, reordered or not
    decrypted, in either portal."""
    out = []
    for where, phases in (
        ("plaintext", report.get("phases", [])),
        ("encrypted", (report.get("encrypted") or {}).get("phases", [])),
    ):
        for r in phases:
            chk = r["check"]
            bad = {k: chk.get(k, 0) for k in ("lost", "duplicated", "reordered", "not_on_matrix")}
            if any(bad.values()):
                out.append(f"{where} {r['direction']} {r['phase']}: {bad}")
    undecrypted = (report.get("encrypted") or {}).get("undecrypted")
    if undecrypted:
        out.append(f"{undecrypted} event(s) the Matrix client could not decrypt")
    return out


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
        "--event-loop",
        choices=("auto", "uvloop", "asyncio"),
        help="the bridge's bridge.event_loop (default: auto, uvloop when installed)",
    )
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
    parser.add_argument(
        "--encrypted",
        action="store_true",
        help="the phases in a plaintext portal, then in an encrypted one (the Matrix user a "
        "matrix-nio E2EE client in both; --single defaults to 50, --scale is skipped)",
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
    if args.encrypted and not any(a.startswith("--single") for a in sys.argv[1:]):
        args.single = 50  # both portals in ~3 min
    if args.bridge_python:
        BRIDGE_PYTHON[:] = [args.bridge_python]
    if args.profile:
        PROFILE_ARGS[:] = ["-m", "cProfile", "-o", str(Path(args.profile).resolve())]
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    if args.encrypted:
        problems = encrypted_problems(report)
        if problems:
            raise SystemExit("FAILED: " + "; ".join(problems))


if __name__ == "__main__":
    main()
