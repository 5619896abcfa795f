"""Benchmark of the appservice transaction ingest path (homeserver -> bridge).

Compares, in one process and one run, a raw aiohttp handler (auth check + JSON parse + 200) with
a real :class:`bridgekit.bridge.Bridge` (every transaction committed to the database before the
200, then dispatched to the per-room inbox and routed). The load generator plays Synapse: one
aiohttp ClientSession, one transaction in flight at a time, to each server in turn.

    .venv/bin/python bench/ingest.py                      # SQLite in a temp dir
    .venv/bin/python bench/ingest.py --db postgres        # private PostgreSQL cluster
    .venv/bin/python bench/ingest.py --db postgres://u@h/db --json
    .venv/bin/python bench/ingest.py --portals --encrypted  # + Megolm events (ingest_e2ee.py)

See bench/README.md for what the numbers mean. This is a benchmark, not a test: it asserts
nothing about speed, it only fails if a server does not answer 200.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import json
import logging
import math
import os
import random
import secrets
import socket
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
DOMAIN = "bench.test"
TXN_PATH = "/_matrix/app/v1/transactions/{txn_id}"
MAX_BODY = 64 * 1024 * 1024

log = logging.getLogger("bench.ingest")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- load -----------------------------------------------------------------------------------

_WORDS = (
    "the a bridge message room hello lunch today meeting deploy build review please thanks "
    "tomorrow server channel ping later ok sure sounds good cannot see what where when why "
    "logs error fixed merged branch release coffee weekend"
).split()


def _sentence(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = -1
    while length < size:
        w = rng.choice(_WORDS)
        words.append(w)
        length += len(w) + 1
    text = " ".join(words)[:size]
    return text[0].upper() + text[1:]


def make_bodies(
    count: int, events_per_txn: int, rooms: int, users: int, body_size: int, seed: int
) -> tuple[list[bytes], list[str], list[str]]:
    """``count`` transaction bodies (JSON bytes) of realistic m.room.message events.

    Event ids are unique across all bodies (a random run prefix + a counter, 44 characters
    like a room v4+ event id); rooms and senders are drawn from small pools; the senders are
    normal local users, the rooms are not portals, and no body starts with the command prefix.
    """
    rng = random.Random(seed)
    alphabet = string.ascii_letters
    room_ids = [f"!{''.join(rng.choices(alphabet, k=18))}:{DOMAIN}" for _ in range(rooms)]
    senders = [f"@user{i:03d}:{DOMAIN}" for i in range(users)]
    texts = [_sentence(rng, body_size) for _ in range(500)]
    prefix = "".join(rng.choices(string.ascii_letters + string.digits, k=20)) + secrets.token_hex(4)
    now = int(time.time() * 1000)
    n = 0
    bodies = []
    for _ in range(count):
        events = []
        for _ in range(events_per_txn):
            n += 1
            events.append(
                {
                    "type": "m.room.message",
                    "room_id": rng.choice(room_ids),
                    "sender": rng.choice(senders),
                    "event_id": f"${prefix}{n:015d}",
                    "origin_server_ts": now + n,
                    "content": {"msgtype": "m.text", "body": rng.choice(texts)},
                    "unsigned": {"age": rng.randint(5, 500)},
                }
            )
        bodies.append(json.dumps({"events": events, "ephemeral": []}).encode())
    return bodies, room_ids, senders


# -- servers --------------------------------------------------------------------------------


class RawServer:
    """The baseline: the least an appservice can do (check the token, parse, answer 200)."""

    name = "raw"

    def __init__(self, hs_token: str) -> None:
        self._token = hs_token.encode()
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), self._token
        ):
            return web.json_response({"errcode": "M_FORBIDDEN"}, status=403)
        await request.json()
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_put(TXN_PATH, self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def drained(self) -> bool:
        return True


class BridgekitServer:
    """A real Bridge with the fake connector; the homeserver address points nowhere."""

    name = "bridgekit"

    def __init__(
        self,
        hs_token: str,
        as_token: str,
        db_url: str,
        portals: tuple[list[str], list[str]] | None = None,
        homeserver: str | None = None,
        port: int | None = None,
        name: str | None = None,
    ) -> None:
        """``homeserver``: a real one (``--encrypted``: the bridge's device needs it), with
        encryption on; otherwise a closed port and no encryption."""
        from bridgekit.bridge import Bridge
        from bridgekit.config import Config
        from bridgekit.testing.fake import FakeConnector

        # Only the fake connector: no entry-point discovery of whatever else is installed.
        connectors = {"fake": FakeConnector}

        self.port = port or free_port()
        # Without a homeserver nothing listens there: the bot set-up retries in the
        # background (quietly).
        hs_address = homeserver or f"http://127.0.0.1:{free_port()}"
        extra: dict[str, Any] = {}
        if homeserver is not None:
            from ingest_e2ee import PICKLE_KEY

            extra["encryption"] = {"allow": True, "default": False, "pickle_key": PICKLE_KEY}
        config = Config.from_dict(
            {
                "homeserver": {"address": hs_address, "domain": DOMAIN},
                "appservice": {
                    "hostname": "127.0.0.1",
                    "port": self.port,
                    "address": f"http://127.0.0.1:{self.port}",
                    "id": "bridgekit",
                    "bot": {"username": "bridgekitbot"},
                    "as_token": as_token,
                    "hs_token": hs_token,
                    "max_body_size": MAX_BODY,
                },
                "database": {"url": db_url},
                "permissions": {"*": "relay", DOMAIN: "user", f"@admin:{DOMAIN}": "admin"},
                "logging": {"level": "WARNING"},
                # A no-op network: messages are accepted and given ids, nothing else.
                "networks": {"fake": {"enabled": True, "record": False}},
                **extra,
            }
        )
        problems = config.validate(connectors)
        if problems:
            raise SystemExit("bad bench config: " + "; ".join(p.format(None) for p in problems))
        self.bridge = Bridge(config, connectors)
        self.portals = portals
        if portals is not None:
            self.name = "bridgekit+portals"
        self.name = name or self.name

    async def start(self) -> None:
        await self.bridge.start()
        if self.portals is not None:
            await self._make_portals(*self.portals)
            await self._settle()

    async def _settle(self, limit_s: float = 60) -> None:
        """Wait for the start-up work of the new logins (their catch-up: one look-up per
        portal and login, 1,000 here) to end before anything is sent: otherwise it overlaps
        the warm-up, finds the warm-up's messages as anchors and queues 1,000 catch-up jobs
        that run during the measured phase (a one-off of a bridge start, not ingest)."""
        deadline = time.perf_counter() + limit_s
        bridge = self.bridge
        while bridge.outbox.pending or any(
            getattr(t.get_coro(), "__name__", "") == "_catch_up" for t in bridge._background
        ):
            if time.perf_counter() > deadline:
                raise TimeoutError("the logins' start-up catch-up did not end")
            await asyncio.sleep(0.01)

    async def _make_portals(self, room_ids: list[str], senders: list[str]) -> None:
        """Every room a portal and every sender logged in to the (no-op) fake network, so
        each event takes the whole Matrix -> network path: dedupe lookup, pending marker,
        connector call, message mapping."""
        from bridgekit.contract.connector import LoginInfo
        from bridgekit.contract.events import PortalKey

        fake = self.bridge.connectors["fake"]
        for i, room_id in enumerate(room_ids):
            chat = f"chat{i}"
            fake.network.add_chat(chat)  # type: ignore[attr-defined]
            portal = self.bridge.portal_objects.new("fake", PortalKey(chat))
            portal.mxid = room_id
            await portal.save()
        for sender in senders:
            await self.bridge.commands.get_or_create_user(sender)
            await self.bridge.add_login(
                LoginInfo(self.bridge.new_login_id(), sender, "fake", sender[1:], sender)
            )

    async def stop(self) -> None:
        await self.bridge.stop()

    async def drained(self) -> bool:
        """All received events handled and every transaction body cleared in the database."""
        if self.bridge.inbox.pending:
            return False
        return not await self.bridge.store.pending_transactions()


# -- measurement ----------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    transactions: int
    stopped_early: bool
    events: int
    seconds: float
    events_per_s: float
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    ack_mean_ms: float
    cpu_s: float
    cpu_us_per_event: float
    drain_s: float | None = None
    processed_events_per_s: float | None = None
    #: ``--encrypted``: every event handled (message mappings, nothing waiting for a key).
    check: dict[str, Any] | None = None


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


async def send_all(
    session: aiohttp.ClientSession,
    port: int,
    hs_token: str,
    bodies: list[bytes],
    txn_prefix: str,
    max_seconds: float = 0,
) -> list[float]:
    """PUT each body in turn (one in flight at a time); the ack latency of each, in seconds.

    With ``max_seconds`` > 0, stop early once that much time has passed (the caller sees it
    from the number of latencies returned).
    """
    headers = {"Authorization": f"Bearer {hs_token}", "Content-Type": "application/json"}
    base = f"http://127.0.0.1:{port}/_matrix/app/v1/transactions/"
    latencies = []
    perf = time.perf_counter
    deadline = perf() + max_seconds if max_seconds > 0 else float("inf")
    for i, body in enumerate(bodies):
        if perf() > deadline:
            break
        url = f"{base}{txn_prefix}{i}"
        t0 = perf()
        async with session.put(url, data=body, headers=headers) as resp:
            payload = await resp.read()
            status = resp.status
        latencies.append(perf() - t0)
        if status != 200:
            raise RuntimeError(f"{url}: HTTP {status} {payload[:200]!r}")
    return latencies


async def wait_drained(server: RawServer | BridgekitServer, limit_s: float) -> float:
    """Seconds until ``server.drained()`` is true (polled every 5 ms)."""
    t0 = time.perf_counter()
    deadline = t0 + limit_s
    while not await server.drained():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{server.name}: inbox not drained after {limit_s:.0f} s")
        await asyncio.sleep(0.005)
    return time.perf_counter() - t0


async def run_server(
    session: aiohttp.ClientSession,
    server: RawServer | BridgekitServer,
    hs_token: str,
    warmup: list[bytes],
    bodies: list[bytes],
    events_per_txn: int,
    run_id: str,
    max_seconds: float,
    prepare: Callable[[Any], Awaitable[None]] | None = None,
    verify: Callable[[Any, int], Awaitable[dict[str, Any]]] | None = None,
) -> Result:
    """``prepare(server)`` runs after the start, before the warm-up (``--encrypted``: the room
    keys); ``verify(server, events)`` once drained (raises if an event was not handled)."""
    await server.start()
    checked: dict[str, Any] | None = None
    try:
        if prepare is not None:
            await prepare(server)
        if warmup:
            await send_all(session, server.port, hs_token, warmup, f"{run_id}-warm-")
            await wait_drained(server, 120)
        gc.collect()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        lat = await send_all(session, server.port, hs_token, bodies, f"{run_id}-", max_seconds)
        t_acked = time.perf_counter()
        drain = await wait_drained(server, 600)
        t_done = time.perf_counter()
        cpu = time.process_time() - cpu0
        if verify is not None:
            checked = await verify(server, (len(warmup) + len(lat)) * events_per_txn)
    finally:
        await server.stop()
    events = len(lat) * events_per_txn
    elapsed = t_acked - t0
    lat.sort()
    res = Result(
        server=server.name,
        transactions=len(lat),
        stopped_early=len(lat) < len(bodies),
        events=events,
        seconds=round(elapsed, 3),
        events_per_s=round(events / elapsed, 1),
        ack_p50_ms=round(percentile(lat, 50) * 1000, 3),
        ack_p99_ms=round(percentile(lat, 99) * 1000, 3),
        ack_max_ms=round(lat[-1] * 1000, 3),
        ack_mean_ms=round(statistics.fmean(lat) * 1000, 3),
        cpu_s=round(cpu, 3),
        cpu_us_per_event=round(cpu / events * 1e6, 1),
    )
    if isinstance(server, BridgekitServer):
        res.drain_s = round(drain, 3)
        res.processed_events_per_s = round(events / (t_done - t0), 1)
    res.check = checked
    return res


# -- database -------------------------------------------------------------------------------


async def open_db(spec: str, tmpdir: str, name: str = "bridgekit") -> tuple[str, Any]:
    """(database URL, async cleanup or None) for ``--db``."""
    if spec == "sqlite":
        return f"sqlite:///{tmpdir}/{name}.db", None
    if spec == "postgres":
        sys.path.insert(0, str(REPO))
        from bridgekit.testing.postgres import create_database, drop_database, ensure_postgres

        dsn = await asyncio.to_thread(ensure_postgres)
        url = await create_database(dsn)
        return url, lambda: drop_database(url)
    if spec.startswith(("postgres://", "postgresql://", "sqlite://")):
        return spec, None
    raise SystemExit(f"--db: expected sqlite, postgres or a postgres:// URL, got {spec!r}")


def db_label(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


# -- main -----------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    hs_token, as_token = secrets.token_hex(32), secrets.token_hex(32)
    run_id = secrets.token_hex(4)  # txn ids unique per run (an explicit --db may be reused)
    t_gen = time.perf_counter()
    all_bodies, room_ids, senders = make_bodies(
        args.warmup + args.transactions,
        args.events_per_txn,
        args.rooms,
        args.users,
        args.body_size,
        args.seed,
    )
    warmup, bodies = all_bodies[: args.warmup], all_bodies[args.warmup :]
    gen_s = time.perf_counter() - t_gen
    body_bytes = statistics.fmean(len(b) for b in bodies) if bodies else 0.0

    cpu_start = time.process_time()
    encrypted_setup: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bridgekit-bench-") as tmpdir:
        args.tmpdir = tmpdir
        db_url, cleanup = await open_db(args.db, tmpdir)
        try:
            connector = aiohttp.TCPConnector(limit=1, force_close=False)
            timeout = aiohttp.ClientTimeout(total=300)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                raw = await run_server(
                    session,
                    RawServer(hs_token),
                    hs_token,
                    warmup,
                    bodies,
                    args.events_per_txn,
                    run_id,
                    args.max_seconds,
                )
                bk = await run_server(
                    session,
                    BridgekitServer(hs_token, as_token, db_url),
                    hs_token,
                    warmup,
                    bodies,
                    args.events_per_txn,
                    run_id,
                    args.max_seconds,
                )
                results = [raw, bk]
                if args.portals:
                    db_url2, cleanup2 = await open_db(args.db, tmpdir, "portals")
                    if db_url2 == db_url:
                        raise SystemExit("--portals needs --db sqlite or --db postgres")
                    results.append(
                        await run_server(
                            session,
                            BridgekitServer(hs_token, as_token, db_url2, (room_ids, senders)),
                            hs_token,
                            warmup,
                            bodies,
                            args.events_per_txn,
                            run_id + "p",
                            args.max_seconds,
                        )
                    )
                    if cleanup2 is not None:
                        await cleanup2()
                if args.encrypted:
                    results += await encrypted_rows(
                        session, args, hs_token, as_token, all_bodies, room_ids, senders, run_id
                    )
                    encrypted_setup = results.pop()  # type: ignore[assignment]
        finally:
            if cleanup is not None:
                await cleanup()
    cpu_total = time.process_time() - cpu_start
    return {
        "params": {
            "transactions": args.transactions,
            "max_seconds": args.max_seconds,
            "events_per_txn": args.events_per_txn,
            "warmup_transactions": args.warmup,
            "rooms": args.rooms,
            "users": args.users,
            "event_body_bytes": args.body_size,
            "mean_txn_bytes": round(body_bytes),
            "db": db_label(db_url),
            "python": sys.version.split()[0],
            "aiohttp": aiohttp.__version__,
            "cpus": os.cpu_count(),
        },
        "results": [asdict(r) for r in results],
        "ratio_events_per_s": round(bk.events_per_s / raw.events_per_s, 3),
        "drain_s": bk.drain_s,
        "cpu_s": round(cpu_total, 3),
        "generate_s": round(gen_s, 3),
        **({"encrypted": encrypted_setup} if encrypted_setup is not None else {}),
    }


async def encrypted_rows(
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
    hs_token: str,
    as_token: str,
    all_bodies: list[bytes],
    room_ids: list[str],
    senders: list[str],
    run_id: str,
) -> list[Any]:
    """``--encrypted`` (bench/ingest_e2ee.py): the portal load against a real Synapse with
    encryption on, plaintext then Megolm-encrypted; the last item is the set-up's figures."""
    from ingest_e2ee import EncryptedSetup, check_all_handled, in_rooms

    n = min(args.transactions, args.encrypted_transactions)
    # Decryption is slow: a shorter warm-up (still every sender's device and most sessions).
    warmup = all_bodies[: min(args.warmup, 20)]
    bodies = all_bodies[args.warmup : args.warmup + n]
    setup = EncryptedSetup(Path(args.tmpdir) / "e2ee", DOMAIN)
    setup.cold_devices = args.cold_devices
    real_rooms: list[str] = []
    port = free_port()  # the registration's URL: each of the two bridges listens there
    prefix = json.loads(all_bodies[0])["events"][0]["event_id"][:-15]
    rows: list[Any] = []
    try:
        for name, encrypted in (("portals+hs", False), ("portals+e2ee", True)):
            db_url, cleanup = await open_db(args.db, args.tmpdir, name.replace("+", "_"))
            server = BridgekitServer(
                hs_token,
                as_token,
                db_url,
                (real_rooms, senders),
                homeserver=setup.synapse.base_url,
                port=port,
                name=f"bridgekit+{name}",
            )
            if not rows:
                setup.register(server.bridge.config)
                real_rooms[:] = await setup.start(senders, len(room_ids))
                renamed = dict(zip(room_ids, real_rooms, strict=True))
                warmup, bodies = in_rooms(warmup, renamed), in_rooms(bodies, renamed)
            send_warm, send_bodies = warmup, bodies
            prepare = None
            if encrypted:
                send_all_bodies = setup.encrypt(warmup + bodies)
                send_warm, send_bodies = (
                    send_all_bodies[: len(warmup)],
                    send_all_bodies[len(warmup) :],
                )

                async def prepare(srv: Any) -> None:
                    async def send(txns: list[bytes]) -> None:
                        await send_all(session, srv.port, hs_token, txns, f"{run_id}-keys-")
                        await wait_drained(srv, 300)

                    await setup.deliver_keys(srv, send)

            rows.append(
                await run_server(
                    session,
                    server,
                    hs_token,
                    send_warm,
                    send_bodies,
                    args.events_per_txn,
                    f"{run_id}{name}",
                    args.max_seconds,
                    prepare=prepare,
                    verify=lambda srv, expected: check_all_handled(srv, expected, prefix),
                )
            )
            if cleanup is not None:
                await cleanup()
    finally:
        setup.stop()
    return [*rows, {**setup.timings, "room_keys": setup.room_keys, "transactions": n}]


def print_table(out: dict[str, Any]) -> None:
    p = out["params"]
    print(
        f"ingest: {p['transactions']} txns x {p['events_per_txn']} events "
        f"(~{p['mean_txn_bytes'] / 1024:.0f} KiB each), {p['rooms']} rooms, db={p['db']}, "
        f"1 txn in flight, {p['cpus']} CPUs"
    )
    header = f"{'server':<17} {'events/s':>10} {'ack p50 ms':>11} {'ack p99 ms':>11} "
    header += f"{'ack max ms':>11} {'CPU s':>7} {'CPU us/ev':>9}  txns"
    print(header)
    print("-" * len(header))
    for r in out["results"]:
        print(
            f"{r['server']:<17} {r['events_per_s']:>10,.0f} {r['ack_p50_ms']:>11.2f} "
            f"{r['ack_p99_ms']:>11.2f} {r['ack_max_ms']:>11.2f} {r['cpu_s']:>7.2f} "
            f"{r['cpu_us_per_event']:>9.1f}  {r['transactions']}"
            + (f" (stopped at --max-seconds {p['max_seconds']:g})" if r["stopped_early"] else "")
        )
    bk = out["results"][1]
    print(f"ratio bridgekit/raw events/s: {out['ratio_events_per_s']:.2f}x (target >= 0.50x)")
    print(
        f"bridgekit drain after last ack: {bk['drain_s']:.3f} s "
        f"(ack+processing throughput {bk['processed_events_per_s']:,.0f} events/s)"
    )
    for r in out["results"][2:]:
        ratio = r["events_per_s"] / out["results"][0]["events_per_s"]
        print(
            f"{r['server']}: {ratio:.2f}x raw; drain after last ack {r['drain_s']:.3f} s "
            f"(ack+processing throughput {r['processed_events_per_s']:,.0f} events/s)"
        )
    print(f"process CPU time: {out['cpu_s']:.2f} s (+{out['generate_s']:.2f} s generating load)")
    enc = out.get("encrypted")
    if enc:
        rows = {r["server"]: r for r in out["results"]}
        hs, e2ee = rows.get("bridgekit+portals+hs"), rows.get("bridgekit+portals+e2ee")
        print(
            f"encrypted: Synapse started in {enc.get('synapse_start_s')} s, "
            f"{out['params']['rooms']} rooms and {out['params']['users']} senders' cross-signed "
            f"devices in {enc.get('rooms_and_senders_s')} s, {enc.get('room_keys')} room keys "
            f"delivered and held in {enc.get('keys_s')} s, bodies encrypted in "
            f"{enc.get('encrypt_s')} s (all unmeasured)"
        )
        if hs and e2ee:
            print(
                "decryption on the ingest path: "
                f"+{e2ee['cpu_us_per_event'] - hs['cpu_us_per_event']:.0f} us CPU per event; "
                f"handled {hs['processed_events_per_s']:,.0f} -> "
                f"{e2ee['processed_events_per_s']:,.0f} events/s; every event decrypted and "
                f"bridged ({e2ee['check']['mapped']} mapped, 0 waiting, 0 failures)"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--transactions", type=int, default=2000, help="measured txns per server")
    ap.add_argument("--events-per-txn", type=int, default=100)
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=30,
        help="stop sending to a server after this long (0: no limit); keeps a slow run short",
    )
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured txns per server first")
    ap.add_argument("--rooms", type=int, default=20)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--body-size", type=int, default=100, help="message body length (chars)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--db",
        default="sqlite",
        help="sqlite (temp dir, default), postgres (private cluster from tests/harness) "
        "or a postgres:// URL (use a throwaway database: the bridge schema is created in it)",
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument(
        "--portals",
        action="store_true",
        help="also run with every room a portal and every sender logged in (no-op connector)",
    )
    ap.add_argument(
        "--encrypted",
        action="store_true",
        help="with --portals: also against a real Synapse with encryption on, the events "
        "plaintext and then Megolm-encrypted (bench/ingest_e2ee.py)",
    )
    ap.add_argument(
        "--encrypted-transactions",
        type=int,
        default=100,
        help="measured txns of the two --encrypted rows at most (decryption is ~50x slower; "
        "their warm-up is 20 txns at most)",
    )
    ap.add_argument(
        "--cold-devices",
        action="store_true",
        help="--encrypted: the bridge fetches the senders' devices at their first messages "
        "(during the warm-up) instead of before it",
    )
    ap.add_argument(
        "--event-loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of the whole run (servers and load generator); the bridge itself "
        "runs on uvloop when installed (bridge.event_loop: auto)",
    )
    args = ap.parse_args(argv)
    if args.encrypted and not args.portals:
        ap.error("--encrypted needs --portals")
    if args.transactions < 1 or args.events_per_txn < 1 or args.warmup < 0 or args.rooms < 1:
        ap.error("--transactions, --events-per-txn and --rooms must be >= 1, --warmup >= 0")
    return args


def run_loop(main: Coroutine[Any, Any, T], kind: str) -> T:
    """``main`` on the event loop asked for: asyncio's own, or uvloop (what a bridge runs on
    by default, ``bridge.event_loop: auto`` in bridgekit/cli.py)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The bot registration retries against a homeserver that is not there: not interesting.
    logging.getLogger("bridgekit.matrix.client").setLevel(logging.ERROR)
    out = run_loop(main_async(args), args.event_loop)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print_table(out)


if __name__ == "__main__":
    main()
