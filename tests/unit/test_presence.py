"""PresenceKeeper: a ghost's last presence is set again every interval, until it goes offline
or is forgotten; a failed refresh is tried again the next round."""

from __future__ import annotations

import asyncio

from bridgekit.portal.presence import PresenceKeeper


async def until(check, timeout: float = 3.0) -> None:  # noqa: ASYNC109
    """Poll ``check()`` (timing-tolerant: the machine may be busy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail = fail

    async def __call__(self, mxid: str, presence: str, status: str | None) -> None:
        self.calls.append((mxid, presence, status))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("homeserver down")


async def test_present_ghosts_are_set_again_each_interval_and_offline_ones_are_not():
    rec = Recorder()
    keeper = PresenceKeeper(0.5, rec)
    keeper.set("@a:x", "unavailable", "lunch")
    keeper.set("@b:x", "online", None)
    keeper.set("@c:x", "offline", None)
    await asyncio.sleep(0.1)
    assert rec.calls == []  # nothing before an interval has passed
    await until(lambda: rec.calls.count(("@a:x", "unavailable", "lunch")) >= 2)
    await keeper.stop()
    assert ("@b:x", "online", None) in rec.calls
    assert all(m != "@c:x" for m, _, _ in rec.calls)


async def test_a_forgotten_or_now_offline_ghost_is_no_longer_refreshed():
    rec = Recorder()
    keeper = PresenceKeeper(0.1, rec)
    keeper.set("@a:x", "online", None)
    keeper.set("@b:x", "online", None)
    keeper.forget("@a:x")
    keeper.set("@b:x", "offline", None)
    await asyncio.sleep(0.3)
    await keeper.stop()
    assert rec.calls == []
    assert len(keeper) == 0


async def test_the_latest_presence_is_the_one_kept():
    rec = Recorder()
    keeper = PresenceKeeper(0.15, rec)
    keeper.set("@a:x", "unavailable", "lunch")
    keeper.set("@a:x", "online", None)
    await until(lambda: len(rec.calls) >= 1)
    await keeper.stop()
    assert set(rec.calls) == {("@a:x", "online", None)}


async def test_a_failed_refresh_waits_for_the_next_round():
    rec = Recorder(fail=1)
    keeper = PresenceKeeper(0.2, rec)
    keeper.set("@a:x", "online", None)
    await until(lambda: len(rec.calls) >= 1)
    await asyncio.sleep(0.1)
    assert len(rec.calls) == 1  # failed, and not retried at once
    await until(lambda: len(rec.calls) >= 2)  # but the next round
    await keeper.stop()


async def test_an_interval_of_zero_keeps_nothing():
    rec = Recorder()
    keeper = PresenceKeeper(0, rec)
    keeper.set("@a:x", "online", None)
    await asyncio.sleep(0.1)
    await keeper.stop()
    assert rec.calls == [] and len(keeper) == 0


async def test_a_network_gone_takes_its_ghosts_out_of_the_keeping():
    rec = Recorder()
    keeper = PresenceKeeper(0.2, rec)
    keeper.set("@_x_a:x", "online", None, "xmpp")
    keeper.set("@_i_b:x", "online", None, "irc")
    keeper.forget_network("xmpp")
    await until(lambda: len(rec.calls) >= 1)
    await keeper.stop()
    assert set(rec.calls) == {("@_i_b:x", "online", None)}
    assert len(keeper) == 1
