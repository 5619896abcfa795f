"""The catch-up gate of live events (bridgekit/contract/live_gate.py), used by the Slack and
Discord logins: open until a (re)connect closes it, live events wait while it is closed, the
catch-ups being queued opens it, and a catch-up that never comes does not hold them forever."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bridgekit.contract.live_gate import LiveGate

pytestmark = pytest.mark.engine_independent


async def test_live_events_wait_while_the_gate_is_closed_and_go_when_it_opens() -> None:
    gate = LiveGate()
    assert gate.is_open
    await asyncio.wait_for(gate.wait(), 1)  # open: no wait at all
    gate.close()
    assert not gate.is_open
    waiting = [asyncio.ensure_future(gate.wait()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting)
    gate.open()
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert gate.is_open
    gate.close()  # the next reconnect closes it again
    later = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0.05)
    assert not later.done()
    gate.open()
    await asyncio.wait_for(later, 1)


async def test_a_catch_up_never_queued_lets_live_events_go_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = LiveGate()
    gate.close()
    with caplog.at_level(logging.WARNING, "bridgekit.contract.live_gate"):
        await asyncio.wait_for(gate.wait(timeout=0.1), 2)
    assert gate.is_open  # opened for every other waiter too
    assert "live events go on" in caplog.text
    await asyncio.wait_for(gate.wait(), 1)
