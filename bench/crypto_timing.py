"""``bridgekit run`` with the crypto backend's calls timed, for ``bench/irc.py --encrypted``.

    python bench/crypto_timing.py OUT.json run -c config.yaml

Runs the bridge exactly as ``python -m bridgekit run`` does, with
``MautrixCrypto.decrypt``, ``.encrypt`` and ``.handle_to_device`` (bridgekit/crypto/
mautrix_backend.py) wrapped: each call's wall time and the event loop thread's CPU time over
it are kept in memory (two floats). When the benchmark writes a number to OUT.json.req, a
thread of the bridge (it looks every 0.1 s) writes what it has to OUT.json with that number
(atomically), so the benchmark reads the calls of one phase by asking before and after it.
Nothing else changes: this is how the bench tells the time spent in encryption and decryption
from the rest of the bridge's work.

The CPU time is the loop thread's over the call, awaits included: under load other tasks that
ran meanwhile are counted too, so it is exact only for messages one at a time.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

#: op -> list of (wall seconds, loop-thread CPU seconds)
CALLS: dict[str, list[tuple[float, float]]] = {"decrypt": [], "encrypt": [], "to_device": []}


def timed(op: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    calls = CALLS[op]
    perf, thread = time.perf_counter, time.thread_time

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = perf(), thread()
        try:
            return await fn(*args, **kwargs)
        finally:
            calls.append((perf() - t0, thread() - c0))

    return wrapper


def install(out: Path) -> None:
    from bridgekit.crypto.mautrix_backend import MautrixCrypto

    MautrixCrypto.decrypt = timed("decrypt", MautrixCrypto.decrypt)  # type: ignore[method-assign]
    MautrixCrypto.encrypt = timed("encrypt", MautrixCrypto.encrypt)  # type: ignore[method-assign]
    MautrixCrypto.handle_to_device = timed(  # type: ignore[method-assign]
        "to_device", MautrixCrypto.handle_to_device
    )
    req = out.with_name(out.name + ".req")

    def serve() -> None:
        done = ""
        while True:
            time.sleep(0.1)
            try:
                asked = req.read_text().strip()
            except OSError:
                continue
            if asked and asked != done:
                snapshot = {op: list(calls) for op, calls in CALLS.items()}
                tmp = out.with_name(out.name + ".tmp")
                tmp.write_text(json.dumps({"seq": asked, "calls": snapshot}))
                os.replace(tmp, out)
                done = asked

    threading.Thread(target=serve, name="crypto-timing", daemon=True).start()


def main() -> int:
    out = Path(sys.argv[1]).resolve()
    # This script's directory (bench/) must not shadow packages: bench/discord.py, slack.py.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    install(out)
    from bridgekit.cli import main as bridgekit_main

    return bridgekit_main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
