"""The connector's own backoff and circuit breaker around discord.py's reconnects.

discord.py reconnects at once after most gateway closes and IDENTIFYs again 5 s later: a
gateway that closes every new session (close 4002 after each GUILD_CREATE, mautrix/discord
#240) gets ~720 IDENTIFYs an hour, and Discord resets a token that IDENTIFYs ~1,000 times a
day. Every IDENTIFY of a login passes :meth:`ReconnectBreaker.before_identify` (discord.py's
``before_identify_hook``): an IDENTIFY whose session did not last :attr:`Policy.stable`
seconds (or never became ready) counts as failed, and the next one waits (exponentially
longer, with jitter); after :attr:`Policy.failures` failed IDENTIFYs within
:attr:`Policy.window` seconds the breaker opens: the login pauses for :attr:`Policy.pause`
seconds and its user is told why (TRANSIENT_DISCONNECT); then one IDENTIFY is tried, and if
its session does not last either, the pause doubles (up to :attr:`Policy.max_pause`). A
session that lasts :attr:`Policy.stable` seconds closes the breaker again. (RESUMEs are not
held: a failed one ends in an IDENTIFY, which is.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bridgekit.discord.reconnect")


@dataclass
class Policy:
    """How a login backs off (the ``reconnect`` section of the network's config)."""

    #: First wait (seconds) before IDENTIFYing again after a short session; doubles each time.
    base: float = 5.0
    #: Longest of those waits.
    max_delay: float = 300.0
    #: Failed IDENTIFYs within ``window`` seconds that open the breaker.
    failures: int = 5
    window: float = 600.0
    #: The first pause of an open breaker; doubles while it keeps failing, up to ``max_pause``.
    pause: float = 1800.0
    max_pause: float = 6 * 3600.0
    #: Seconds a session must last for the login to count as healthy again.
    stable: float = 60.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> Policy:
        policy = cls()
        for key, value in (section or {}).items():
            if hasattr(policy, key) and isinstance(value, int | float) and value >= 0:
                setattr(policy, key, type(getattr(policy, key))(value))
        return policy


def validate(section: Any) -> list[tuple[str, str]]:
    if section is None:
        return []
    if not isinstance(section, Mapping):
        return [("reconnect", "must be a mapping")]
    problems = []
    known = Policy.__dataclass_fields__
    for key, value in section.items():
        if key not in known:
            problems.append((f"reconnect.{key}", "unknown key"))
        elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            problems.append((f"reconnect.{key}", "must be a number >= 0"))
    return problems


class ReconnectBreaker:
    """One login's record of its gateway sessions, and the waits it imposes."""

    def __init__(
        self,
        policy: Policy,
        *,
        on_open: Callable[[str], None] = lambda why: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.on_open = on_open
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        #: When recent IDENTIFYs failed (within the window).
        self.failed_at: deque[float] = deque()
        #: Failed IDENTIFYs in a row (the backoff's exponent).
        self.streak = 0
        #: An IDENTIFY was sent and its session has not proven stable yet.
        self.on_trial = False
        #: Times the breaker opened in a row (the pause's exponent).
        self.trips = 0
        self.session_started: float | None = None
        self.identifies = 0
        self.last_close: int | None = None

    def up(self) -> None:
        """A session became ready (READY or RESUMED)."""
        if self.session_started is None:
            self.session_started = self.clock()

    def down(self, code: int | None) -> None:
        """The gateway connection ended (close ``code``, None: unknown / no socket)."""
        now = self.clock()
        started, self.session_started = self.session_started, None
        if code not in (None, 1000):  # 1000: discord.py's own close (after op 9, ...)
            self.last_close = code
        if started is not None and now - started >= self.policy.stable:
            self.healthy()

    def healthy(self) -> None:
        self.failed_at.clear()
        self.streak = 0
        self.trips = 0
        self.on_trial = False

    def _failed(self) -> None:
        now = self.clock()
        self.streak += 1
        self.failed_at.append(now)
        while self.failed_at and now - self.failed_at[0] > self.policy.window:
            self.failed_at.popleft()

    def next_wait(self) -> tuple[float, str]:
        """Seconds to wait before the next IDENTIFY, and why (``""``: the breaker is closed)."""
        p = self.policy
        if self.session_started is not None and self.clock() - self.session_started >= p.stable:
            self.healthy()
        failed = self.on_trial  # the previous IDENTIFY's session did not last
        if failed:
            self._failed()
        if not self.streak:
            return 0.0, ""
        # Open after enough failures in the window; after a pause, one more failure (the
        # trial IDENTIFY's) opens it again, for longer.
        if len(self.failed_at) >= p.failures or (self.trips and failed):
            pause = min(p.pause * 2**self.trips, p.max_pause)
            code = f" (last close code {self.last_close})" if self.last_close else ""
            what = (
                f"Discord ended the gateway session tried after a pause too{code}"
                if self.trips
                else f"Discord ended {p.failures} gateway sessions within {p.window:.0f} s{code}"
            )
            self.trips += 1
            self.failed_at.clear()
            why = f"{what}: not reconnecting for {pause:.0f} s, to keep the token from being reset"
            return pause, why
        delay = min(p.base * 2 ** (self.streak - 1), p.max_delay)
        return delay * (0.5 + self.rng.random() / 2), ""

    async def before_identify(self, initial: bool) -> None:
        """discord.py is about to IDENTIFY: wait as long as the record says."""
        wait, why = self.next_wait()
        self.identifies += 1
        self.on_trial = True
        if why:
            log.warning("%s", why)
            self.on_open(why)
        if wait > 0:
            log.info("Waiting %.1f s before identifying again", wait)
            await self.sleep(wait)
