"""The ``--portals`` server of bench/ingest.py alone, for profiling where its time goes.

Same bodies, bridge and load generator as ``bench/ingest.py --portals``, without the raw and
non-portal servers, and with the event loop thread's own CPU time beside the process's (the
rest is aiosqlite's threads running SQLite). Run it under a sampling profiler::

    py-spy record -r 500 -f raw -o ingest.txt -- .venv/bin/python bench/ingest_portals.py 800

or with ``--cprofile FILE`` (deterministic, but its per-call overhead inflates small functions).
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest  # noqa: E402


async def run(args: argparse.Namespace) -> None:
    hs_token, as_token = secrets.token_hex(32), secrets.token_hex(32)
    bodies, rooms, senders = ingest.make_bodies(
        args.warmup + args.transactions, 100, 20, 50, 100, args.seed
    )
    warmup, bodies = bodies[: args.warmup], bodies[args.warmup :]
    with tempfile.TemporaryDirectory(prefix="bridgekit-bench-") as tmpdir:
        url, cleanup = await ingest.open_db(args.db, tmpdir, "portals")
        server = ingest.BridgekitServer(hs_token, as_token, url, (rooms, senders))
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            await server.start()
            try:
                await ingest.send_all(session, server.port, hs_token, warmup, "warm-")
                await ingest.wait_drained(server, 120)
                profile = cProfile.Profile() if args.cprofile else None
                cpu0, loop0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
                if profile:
                    profile.enable()
                await ingest.send_all(session, server.port, hs_token, bodies, "m-")
                await ingest.wait_drained(server, 600)
                if profile:
                    profile.disable()
                    profile.dump_stats(args.cprofile)
                cpu, loop = time.process_time() - cpu0, time.thread_time() - loop0
                elapsed = time.perf_counter() - t0
            finally:
                await server.stop()
        if cleanup is not None:
            await cleanup()
    events = len(bodies) * 100
    print(
        f"{events / elapsed:,.0f} events/s acked and handled; CPU {cpu / events * 1e6:.1f} "
        f"us/event (event loop thread {loop / events * 1e6:.1f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("transactions", type=int, nargs="?", default=800)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", default="sqlite", help="as bench/ingest.py --db")
    ap.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--cprofile", metavar="FILE", help="write a cProfile of the measured part")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bridgekit.matrix.client").setLevel(logging.ERROR)
    ingest.run_loop(run(args), args.event_loop)


if __name__ == "__main__":
    main()
