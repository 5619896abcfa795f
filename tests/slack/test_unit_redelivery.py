"""A redelivered envelope while the first delivery is still being stored: acknowledged only
if the first is stored; if storing fails, the redelivery fails too, so Slack sends it again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from bridges.slack.connector import SlackConnector
from bridges.slack.ordering import ChannelTurns

pytestmark = pytest.mark.engine_independent


class SlowInbound:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls = 0
        self.release = asyncio.Event()

    async def handle(self, client: Any, payload: dict[str, Any]) -> None:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise OSError("database is away")


def connector_with(inbound: SlowInbound) -> tuple[SlackConnector, Any]:
    connector = SlackConnector.__new__(SlackConnector)
    connector._seen = __import__("collections").OrderedDict()
    connector._in_flight = {}
    connector.turns = ChannelTurns()
    connector.inbound = inbound  # type: ignore[assignment]

    async def learn(client: Any, payload: Any) -> None:
        return None

    connector.dms = SimpleNamespace(learn=learn)  # type: ignore[assignment]
    gate = asyncio.Event()
    gate.set()
    return connector, SimpleNamespace(live_gate=gate)


@pytest.mark.parametrize("first_fails", [False, True])
async def test_redelivery_waits_for_the_first_delivery(first_fails):
    inbound = SlowInbound(fail=first_fails)
    connector, client = connector_with(inbound)
    payload = {"event_id": "Ev1", "event": {"type": "message"}}
    first = asyncio.create_task(connector.receive(client, payload))
    await asyncio.sleep(0)
    again = asyncio.create_task(connector.receive(client, payload))
    await asyncio.sleep(0.05)
    assert not again.done()  # not acknowledged while the first is unstored
    inbound.release.set()
    results = await asyncio.gather(first, again, return_exceptions=True)
    assert inbound.calls == 1
    if first_fails:
        assert all(isinstance(r, Exception) for r in results)
        # the next delivery is handled afresh
        inbound.fail = False
        await connector.receive(client, payload)
        assert inbound.calls == 2
    else:
        assert results == [None, None]
