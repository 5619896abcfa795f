"""Why bridges/irc/client.py and not the `irc` package: per-connection memory and CPU per line.

Runs N idle registered connections to a local InspIRCd with each implementation (in separate
processes), then reports RSS per connection, and the CPU time to parse and dispatch a burst of
PRIVMSG lines through each one's receive path.

    python bench/irc_conn_footprint.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


LINE = b"@time=2024-01-01T00:00:00.000Z;msgid=abc :nick!user@host PRIVMSG #chan :hello there\r\n"


async def run_ours(host: str, port: int, n: int) -> dict[str, float]:
    from bridges.irc.client import IRCConnection
    from bridges.irc.config import ServerConfig

    sc = ServerConfig(name="b", host=host, port=port)
    sem = asyncio.Semaphore(200)
    conns, ready = [], []
    got = [0]

    def on_line(msg) -> None:
        if msg.command == "PRIVMSG":
            got[0] += 1

    base = rss_mib()
    for i in range(n):
        c = IRCConnection(
            sc,
            f"o{i}",
            on_line=on_line,
            on_registered=lambda: None,
            on_state=lambda s, m: None,
            semaphore=sem,
        )
        c.start()
        conns.append(c)
        ready.append(c.ready)
    await asyncio.gather(*(r.wait() for r in ready))
    per_conn = (rss_mib() - base) * 1024 / n
    proto = conns[0]._proto
    t = time.process_time()
    for _ in range(20000):
        proto.data_received(LINE)
    cpu = (time.process_time() - t) / 20000 * 1e6
    for c in conns:
        await c.stop()
    return {"kib_per_conn": per_conn, "us_per_line": cpu, "lines": got[0]}


async def run_irc(host: str, port: int, n: int) -> dict[str, float]:
    import irc.client
    import irc.client_aio

    loop = asyncio.get_running_loop()
    reactor = irc.client_aio.AioReactor(loop=loop)
    got = [0]
    welcomed = [0]

    def on_pub(conn, event) -> None:
        got[0] += 1

    def on_welcome(conn, event) -> None:
        welcomed[0] += 1

    reactor.add_global_handler("pubmsg", on_pub)
    reactor.add_global_handler("endofmotd", on_welcome)
    base = rss_mib()
    conns = []
    sem = asyncio.Semaphore(200)

    async def one(i: int) -> None:
        async with sem:
            c = reactor.server()
            c.buffer_class.errors = "replace"
            await c.connect(host, port, f"i{i}")
            conns.append(c)

    await asyncio.gather(*(one(i) for i in range(n)))
    while welcomed[0] < n:  # noqa: ASYNC110 - polling a counter the irc handlers bump
        await asyncio.sleep(0.1)
    per_conn = (rss_mib() - base) * 1024 / n
    c = conns[0]
    t = time.process_time()
    for _ in range(20000):
        c.process_data(LINE)
    cpu = (time.process_time() - t) / 20000 * 1e6
    return {"kib_per_conn": per_conn, "us_per_line": cpu, "lines": got[0]}


def child(kind: str, host: str, port: int, n: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fn = run_ours if kind == "ours" else run_irc
    print(json.dumps(asyncio.run(fn(host, port, n))))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    from tests.harness.inspircd import InspIRCd

    server = InspIRCd(tempfile.mkdtemp(), flood_control=False)
    server.start()
    try:
        for kind in ("ours", "irc"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, server.host, str(server.port), str(n)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            print(kind, out.stdout.strip() or out.stderr[-2000:])
    finally:
        server.stop()


if __name__ == "__main__":
    main()
