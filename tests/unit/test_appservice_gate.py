"""The tests' appservice gate (bridgekit/testing/appservice_gate.py): a push forwarded to a
bridge that stops without ever answering it is answered 502 when the bridge stops."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bridgekit.testing.appservice_gate import AppserviceGate
from bridgekit.testing.ports import free_port

pytestmark = pytest.mark.engine_independent


async def test_a_push_the_stopped_bridge_never_answered_gets_502_at_the_stop() -> None:
    # A "bridge" that takes the connection and never answers (what a connection asyncio
    # accepts as the bridge's listener closes does on Python 3.11).
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    bridge_port = free_port()
    bridge = await asyncio.start_server(never_answer, "127.0.0.1", bridge_port)
    gate = AppserviceGate(bridge_port)
    gate.start()
    try:
        gate.in_test = True
        async with aiohttp.ClientSession() as http:
            push = asyncio.ensure_future(
                http.put(f"{gate.url}/_matrix/app/v1/transactions/1", json={"events": []})
            )
            for _ in range(100):  # the gate forwarded it
                if held:
                    break
                await asyncio.sleep(0.05)
            assert held
            await asyncio.sleep(0.2)
            assert not push.done()  # the bridge is still running: the push waits for it
            await gate.bridge_stopped()
            resp = await asyncio.wait_for(push, 5)
            assert resp.status == 502
            resp.release()
            # A later push, to the next bridge, is forwarded again.
            held.clear()
            later = asyncio.ensure_future(
                http.put(f"{gate.url}/_matrix/app/v1/transactions/2", json={"events": []})
            )
            for _ in range(100):
                if held:
                    break
                await asyncio.sleep(0.05)
            assert held and not later.done()
            await gate.bridge_stopped()
            (await later).release()
    finally:
        for writer in held:
            writer.close()
        bridge.close()
        gate.stop()
