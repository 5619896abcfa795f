"""The reconnect breaker's schedule on a virtual clock (bridges/discord/reconnect.py): the
8.5 hours of mautrix/discord #240 (close 4002 after every GUILD_CREATE) cost a few dozen
IDENTIFYs, not a thousand; the e2e side is tests/discord/test_e2e_gateway.py."""

from __future__ import annotations

import random

import pytest

from bridges.discord import config as cfg
from bridges.discord.reconnect import Policy, ReconnectBreaker

pytestmark = pytest.mark.engine_independent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def breaker(policy: Policy, clock: Clock, opened: list[str]) -> ReconnectBreaker:
    return ReconnectBreaker(
        policy, on_open=opened.append, clock=clock, sleep=clock.sleep, rng=random.Random(7)
    )


async def storm(b: ReconnectBreaker, clock: Clock, hours: float, session: float = 0.5) -> int:
    """IDENTIFY, READY, closed ``session`` s later, again, for ``hours``: IDENTIFYs sent."""
    sent = 0
    end = hours * 3600
    while True:
        await b.before_identify(initial=sent == 0)
        if clock.now > end:
            return sent
        sent += 1
        b.up()
        clock.now += session
        b.down(4002)


async def test_eight_and_a_half_hours_of_4002_cost_a_few_dozen_identifies():
    clock, opened = Clock(), []
    b = breaker(Policy(), clock, opened)
    sent = await storm(b, clock, 8.5)
    assert sent <= 12  # the anchor's bridge: 1,001; discord.py alone: one per ~5 s
    assert opened and "4002" in opened[0] and "5 gateway sessions" in opened[0]
    assert "after a pause" in opened[1] and "3600 s" in opened[1]


async def test_waits_grow_with_jitter_then_the_breaker_pauses_longer_each_time():
    clock, opened = Clock(), []
    policy = Policy(base=1, max_delay=8, failures=4, window=600, pause=100, max_pause=300)
    b = breaker(policy, clock, opened)
    waits = []
    for _ in range(12):
        before = clock.now
        await b.before_identify(initial=False)
        waits.append(clock.now - before)
        b.up()
        b.down(4002)
    assert waits[0] == 0  # the first IDENTIFY does not wait
    assert 0.5 <= waits[1] <= 1 and 1 <= waits[2] <= 2 and 2 <= waits[3] <= 4
    assert waits[4] == pytest.approx(100)  # 4 failed within the window: open
    assert waits[5] == pytest.approx(200)  # the trial IDENTIFY's session failed too: a longer pause
    assert max(waits) == pytest.approx(300)  # the pause doubles, capped
    assert len(opened) >= 2


async def test_a_stable_session_resets_everything():
    clock, opened = Clock(), []
    b = breaker(Policy(base=1, failures=3, stable=60), clock, opened)
    for _ in range(2):
        await b.before_identify(initial=False)
        b.up()
        b.down(4000)
    await b.before_identify(initial=False)
    b.up()
    clock.now += 61  # lasted
    b.down(4000)
    before = clock.now
    await b.before_identify(initial=False)
    assert clock.now == before and not opened


def test_config_validates_the_reconnect_section():
    assert cfg.validate({"reconnect": {"base": 1, "pause": 60}}) == []
    problems = dict(cfg.validate({"reconnect": {"base": -1, "bogus": 1}}))
    assert "reconnect.base" in problems and "reconnect.bogus" in problems
    assert Policy.from_config({"failures": 3, "pause": 10}).failures == 3
