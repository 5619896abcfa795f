"""The cost of end-to-bridge encryption per message: Megolm encryption (what the bridge does
for each message it sends to an encrypted room) and decryption (each message it receives),
through mautrix.crypto's OlmMachine on its crypto store in the bridge's database engine, as
the bridge's backend (bridgekit/crypto/mautrix_backend.py) runs them. No homeserver: the
machine encrypts with its own room key and decrypts what it encrypted (the same path as a
user's message but for the sender-device look-up, which the real path caches).

    .venv/bin/python bench/crypto.py                     # SQLite in a temp dir
    .venv/bin/python bench/crypto.py --db postgres://u@h/db --messages 2000

Each operation includes its database writes (decryption records the message index against
replays; encryption stores the ratcheted room key). Prints latency p50/p99 and CPU per
message. A benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from mautrix.client import Client
    from mautrix.crypto import OlmMachine, PgCryptoStore
    from mautrix.errors import EncryptionError
    from mautrix.types import EncryptedEvent, EventType, RoomID, UserID

    from bridgekit.database.db import create_database

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db if args.db != "sqlite" else f"sqlite:///{tmp}/bench.db"
        db = create_database(url)
        await db.start()
        await PgCryptoStore.upgrade_table.upgrade(db)
        bot = UserID("@bot:bench.test")
        store = PgCryptoStore(bot, "bench-pickle-key", db)
        await store.open()
        client = Client(mxid=bot, device_id="BENCH", base_url="http://127.0.0.1:1")

        class Rooms:
            async def is_encrypted(self, room_id: str) -> bool:
                return True

            async def get_encryption_info(self, room_id: str) -> Any:
                return None

            async def find_shared_rooms(self, user_id: str) -> list[str]:
                return []

        machine = OlmMachine(client, store, Rooms())  # type: ignore[arg-type]
        await machine.load()
        await store.put_device_id("BENCH")
        room = RoomID("!bench:bench.test")
        # A room key shared with nobody (no devices to send it to: no network needed).
        await machine.share_group_session(room, [])
        content = {"msgtype": "m.text", "body": "x" * args.body_size}
        enc_lat, dec_lat = [], []
        encrypted: list[dict[str, Any]] = []
        cpu0 = time.process_time()
        for _ in range(args.messages):
            t = time.perf_counter()
            try:
                out = await machine.encrypt_megolm_event(room, EventType.ROOM_MESSAGE, content)
            except EncryptionError:  # the room key is rotated every 100 messages: a new one
                await machine.share_group_session(room, [])
                out = await machine.encrypt_megolm_event(room, EventType.ROOM_MESSAGE, content)
            enc_lat.append(time.perf_counter() - t)
            encrypted.append(out.serialize())
        enc_cpu = time.process_time() - cpu0
        cpu0 = time.process_time()
        for i, c in enumerate(encrypted):
            evt = EncryptedEvent.deserialize(
                {
                    "type": "m.room.encrypted",
                    "room_id": room,
                    "event_id": f"$e{i}",
                    "sender": bot,
                    "origin_server_ts": 1,
                    "content": c,
                }
            )
            t = time.perf_counter()
            await machine.decrypt_megolm_event(evt)
            dec_lat.append(time.perf_counter() - t)
        dec_cpu = time.process_time() - cpu0
        await store.close()
        await db.stop()
        await client.api.session.close()

    def summary(lat: list[float], cpu: float) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(lat, 50) * 1000, 3),
            "p99_ms": round(percentile(lat, 99) * 1000, 3),
            "mean_ms": round(statistics.mean(lat) * 1000, 3),
            "cpu_ms_per_msg": round(cpu / len(lat) * 1000, 3),
        }

    return {
        "db": "sqlite" if args.db == "sqlite" else "postgres",
        "messages": args.messages,
        "body_size": args.body_size,
        "encrypt": summary(enc_lat, enc_cpu),
        "decrypt": summary(dec_lat, dec_cpu),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite", help="sqlite, or a postgres:// URL")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--body-size", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['messages']} messages of {out['body_size']} chars, crypto store on {out['db']}")
    for op in ("encrypt", "decrypt"):
        s = out[op]
        print(
            f"  {op:8} p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms  "
            f"mean {s['mean_ms']:.3f} ms  CPU {s['cpu_ms_per_msg']:.3f} ms/msg"
        )


if __name__ == "__main__":
    main()
