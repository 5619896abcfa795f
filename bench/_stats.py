"""Statistics the benchmarks share: percentiles, latency summaries, and the loss/order check."""

from __future__ import annotations

import os
import statistics
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


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all threads) in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        rest = fh.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK
