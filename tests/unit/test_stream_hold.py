"""Which lines wait for the rest of their stream, and for how long
(bridgekit.outbox.remote_queue)."""

from __future__ import annotations

import asyncio
import time

from bridgekit.outbox.remote_queue import STREAM_GAP, StreamHold

PORTAL = ("irc", "#chan")


def test_only_a_line_close_behind_its_senders_previous_one_is_held() -> None:
    hold = StreamHold(0.25)
    assert hold.arrived(PORTAL, "bob", 10.0) is None  # first line: goes out at once
    assert hold.arrived(PORTAL, "bob", 10.02) == 10.02  # a paste's second line
    assert hold.arrived(PORTAL, "carol", 10.03) is None  # someone else: not bob's stream
    assert hold.arrived(PORTAL, "bob", 10.02 + STREAM_GAP + 0.05) is None  # typed, after a pause
    assert hold.arrived(("irc", "#other"), "bob", 10.2) is None  # another portal


def test_release_is_when_the_sender_pauses_or_the_hold_runs_out() -> None:
    hold = StreamHold(0.25)
    hold.arrived(PORTAL, "bob", 1.0)
    held_from = hold.arrived(PORTAL, "bob", 1.02)
    assert held_from is not None
    assert abs(hold.release_at(PORTAL, "bob", held_from) - (1.02 + STREAM_GAP)) < 1e-9
    for t in (1.1, 1.18, 1.26):  # bob keeps streaming: release moves on, up to the cap
        hold.arrived(PORTAL, "bob", t)
    assert abs(hold.release_at(PORTAL, "bob", held_from) - (1.02 + 0.25)) < 1e-9


def test_nothing_is_held_when_the_hold_is_off() -> None:
    hold = StreamHold(0)
    hold.arrived(PORTAL, "bob", 1.0)
    assert hold.arrived(PORTAL, "bob", 1.01) is None


def bob_streaming(seconds: float) -> tuple[StreamHold, float]:
    """A hold of ``seconds`` and the arrival time of bob's second line of a paste."""
    hold = StreamHold(seconds)
    now = time.monotonic()
    hold.arrived(PORTAL, "bob", now)
    held_from = hold.arrived(PORTAL, "bob", now)
    assert held_from is not None
    return hold, held_from


def test_a_waiting_merge_wakes_when_someone_else_speaks() -> None:
    async def run() -> float:
        hold, held_from = bob_streaming(5.0)

        async def bob_keeps_streaming() -> None:
            while True:
                await asyncio.sleep(0.02)
                hold.arrived(PORTAL, "bob", time.monotonic())

        streamer = asyncio.create_task(bob_keeps_streaming())
        asyncio.get_running_loop().call_later(
            0.2, lambda: hold.arrived(PORTAL, "carol", time.monotonic())
        )
        start = time.monotonic()
        await hold.wait(PORTAL, "bob", held_from, lambda: False)
        streamer.cancel()
        return time.monotonic() - start

    waited = asyncio.run(run())
    assert 0.15 < waited < 1.0, waited


def test_a_wait_ends_when_the_merge_cannot_grow() -> None:
    async def run() -> float:
        hold, held_from = bob_streaming(5.0)
        start = time.monotonic()
        await hold.wait(PORTAL, "bob", held_from, lambda: True)
        return time.monotonic() - start

    assert asyncio.run(run()) < 0.05
