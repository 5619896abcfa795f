"""Statistics the benchmarks share: percentiles, latency summaries, and the loss/order check."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values``, linearly interpolated; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(values: list[float]) -> dict[str, Any]:
    """p50/p95/p99/max/mean in milliseconds of durations given in seconds."""
    if not values:
        return {"n": 0}
    out: dict[str, Any] = {"n": len(values)}
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        out[name] = round(pct(values, q) * 1000, 2)  # type: ignore[operator]
    out["max"] = round(max(values) * 1000, 2)
    out["mean"] = round(statistics.fmean(values) * 1000, 2)
    return out


def order_check(sent: list[int], seen: list[int]) -> dict[str, int]:
    """Lost, duplicated and reordered messages of ``sent`` (reference order) in ``seen``."""
    rank = {s: i for i, s in enumerate(sent)}
    counts: dict[int, int] = {}
    reordered = 0
    high = -1
    for s in seen:
        if s not in rank:
            continue
        counts[s] = counts.get(s, 0) + 1
        if counts[s] > 1:
            continue
        if rank[s] < high:
            reordered += 1  # arrived after a message that was sent later
        high = max(high, rank[s])
    return {
        "sent": len(sent),
        "delivered": len(counts),
        "lost": sum(1 for s in sent if s not in counts),
        "duplicated": sum(c - 1 for c in counts.values()),
        "reordered": reordered,
    }


def proc_cpu(pid: int, tid: int | None = None) -> float:
    """CPU time of a process (all its threads, exited ones included), or of one of its threads,
    in seconds, to the nanosecond.

    /proc/<pid>/stat counts in clock ticks (10 ms): over 300 messages that is 0.03 ms per
    message, about the difference being measured. The process's CPU-time clock
    (``clock_getcpuclockid``: ``(~pid << 3) | CPUCLOCK_SCHED``) is exact and readable for any
    process; a thread of another process has no such clock, but its ``schedstat`` is exact.
    """
    if tid is not None:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
            return int(fh.read().split()[0]) / 1e9
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except OSError:  # not Linux, or the process is gone
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK
