"""The results table of bench/slack.py and bench/discord.py (each had its own copy): one row
a phase (latency percentiles, throughput, lost/reordered/duplicated, bridge CPU), then RSS."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return (f"{value:.1f}" if value >= 10 else f"{value:.2f}").rjust(width)
    return str(value).rjust(width)


def print_table(report: dict[str, Any], network: str, title: str, users_via: str = "") -> None:
    """The report of bench/{network}.py (its fake is ``title``'s), as a table."""
    c = report["conditions"]
    print(
        f"bench/{network}.py: fake {title} (in the bench process) + real Synapse (SQLite) + "
        f"`bridgekit run` in its own process; {c.get('cpus')} CPUs, load "
        f"{c.get('loadavg_start')} -> "
        f"{c.get('loadavg_end')}, {c.get('run_seconds')} s; portals opened in "
        f"{c.get('portals_open_s')} s"
    )
    print(
        f"idle bridge CPU {c.get('bridge_idle_cpu_pct')}%, RSS {c.get('bridge_rss_mib_idle')} MiB "
        f"idle, {c.get('bridge_rss_mib_end')} MiB after the phases, capture: "
        f"{c.get('capture', 'off')}"
    )
    print(
        f"{'':36}{'n':>5}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8} ms{'msg/s':>7}"
        f"{'lost':>5}{'reord':>6}{'dup':>4}  bridge CPU s/1k msg"
    )
    for r in report.get("phases", []):
        inbound = r["direction"] == f"{network}->matrix"
        arrow = f"{title}->Matrix" if inbound else f"Matrix->{title}"
        lat, chk, cpu = r["latency_ms"], r["check"], r["cpu_ms_per_msg"]
        print(
            f"{arrow + ' ' + r['phase']:36}{lat.get('n', 0):>5}{fmt(lat.get('p50'))}"
            f"{fmt(lat.get('p95'))}{fmt(lat.get('p99'))}{fmt(lat.get('max'))}   "
            f"{fmt(r.get('throughput'), 7)}{chk['lost']:>5}{chk['reordered']:>6}"
            f"{chk['duplicated']:>4}  {cpu.get('bridge', 0):.2f} (loop "
            f"{cpu.get('bridge_loop', 0):.2f}); synapse {cpu.get('synapse', 0):.1f}"
        )
        for key, label in (("bridge_added_ms", "bridge-added"), ("bridge_service_ms", "  service")):
            b = r.get(key)
            if b and b.get("n"):
                print(
                    f"{'  ' + label:36}{b['n']:>5}{fmt(b.get('p50'))}{fmt(b.get('p95'))}"
                    f"{fmt(b.get('p99'))}{fmt(b.get('max'))}"
                )
    m = report.get("memory")
    if m:
        print()
        print(f"RSS {m['rss_mib_before']} MiB before", end="")
        if "users" in m:
            o = m["users_order"]
            print(
                f"; {m['users']} users learned through {users_via} ({m['user_messages']} messages "
                f"of 50 mentions, {m['users_delivered']} delivered, {o['reordered']} reordered, "
                f"{m['users_s']} s, bridge CPU {m['users_cpu_s']} s): {m['rss_mib_users']} MiB "
                f"= {m['kib_per_user']} KiB per user",
                end="",
            )
        if "channels" in m:
            print(
                f"; {m['channels']} channels with a portal ({m['channels_s']} s, bridge CPU "
                f"{m['channels_cpu_s']} s): {m['rss_mib_channels']} MiB = "
                f"{m['kib_per_channel']} KiB per channel",
                end="",
            )
        print()
