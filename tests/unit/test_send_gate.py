"""The send gate: a portal's remote events wait for its Matrix sends in flight, within bounds."""

from __future__ import annotations

import asyncio

from bridgekit.portal.send_gate import SendGate


async def test_waits_until_every_send_of_the_portal_is_done() -> None:
    gate = SendGate()
    order: list[str] = []
    first, second = asyncio.Event(), asyncio.Event()

    async def send(name: str, done: asyncio.Event) -> None:
        with gate.sending("p"):
            await done.wait()
            order.append(name)

    tasks = [asyncio.create_task(send("a", first)), asyncio.create_task(send("b", second))]
    await asyncio.sleep(0)
    waiter = asyncio.create_task(gate.wait_idle("p"))
    first.set()
    await asyncio.sleep(0.01)
    assert not waiter.done()  # "b" is still out
    second.set()
    await waiter
    assert order == ["a", "b"]
    await asyncio.gather(*tasks)


async def test_other_portals_do_not_wait() -> None:
    gate = SendGate()
    hold = asyncio.Event()

    async def send() -> None:
        with gate.sending("p"):
            await hold.wait()

    task = asyncio.create_task(send())
    await asyncio.sleep(0)
    await asyncio.wait_for(gate.wait_idle("q"), 0.1)
    hold.set()
    await task


async def test_a_send_that_never_ends_holds_the_portal_only_for_max_wait() -> None:
    gate = SendGate(max_wait=0.05)
    hold = asyncio.Event()

    async def send() -> None:
        with gate.sending("p"):
            await hold.wait()

    task = asyncio.create_task(send())
    await asyncio.sleep(0)
    await asyncio.wait_for(gate.wait_idle("p"), 1)
    hold.set()
    await task
    await asyncio.wait_for(gate.wait_idle("p"), 0.1)  # idle again
