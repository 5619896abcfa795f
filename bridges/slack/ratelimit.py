"""429s: Slack's ``Retry-After`` honoured per method, so nothing is lost or reordered.

slack-sdk retries only connection errors unless told otherwise. :class:`MethodLimits` is its
rate-limit retry handler with a memory: a 429 makes the call wait its ``Retry-After`` and go
again (the call returns late, but in order: the portal's queue waits for it), and the method
stays blocked until then for this login's other calls (:meth:`MethodLimits.wait`, before each
call), which would only collect 429s of their own meanwhile. Slack's limits are per method
(tiers), so other methods go on.
"""

from __future__ import annotations

import asyncio
import random
from urllib.parse import urlsplit

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

#: Longest wait honoured per 429 (seconds): a bogus header must not park a login for hours.
MAX_RETRY_AFTER = 300.0


def retry_after(response: HttpResponse) -> float:
    """The seconds a 429 asks to wait (1 if it does not say, bounded)."""
    for key, values in response.headers.items():
        if key.lower() == "retry-after" and values:
            try:
                return min(max(float(values[0]), 0.0), MAX_RETRY_AFTER)
            except ValueError:
                break
    return 1.0


def method_of(url: str) -> str:
    """``chat.postMessage`` from ``https://slack.com/api/chat.postMessage?x=y``."""
    return urlsplit(url).path.rsplit("/", 1)[-1]


class MethodLimits(AsyncRetryHandler):
    """Retries a 429 after its ``Retry-After`` (up to ``max_retry_count`` times per call) and
    remembers until when each method is limited."""

    def __init__(self, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.until: dict[str, float] = {}  # method -> loop time

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        self._block(method_of(request.url), retry_after(response))
        return True

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await self.wait(method_of(request.url))
        state.increment_current_attempt()

    def _block(self, method: str, seconds: float) -> None:
        # a little jitter, so that calls waiting for the same method do not all go at once
        until = asyncio.get_running_loop().time() + seconds + random.random() * 0.1
        if until > self.until.get(method, 0.0):
            self.until[method] = until

    def blocked_for(self, method: str) -> float:
        """Seconds until ``method`` may be called again (0 if it is not limited)."""
        until = self.until.get(method)
        if until is None:
            return 0.0
        left = until - asyncio.get_running_loop().time()
        if left <= 0:
            del self.until[method]
            return 0.0
        return left

    async def wait(self, method: str) -> None:
        """Wait out a 429 another call of ``method`` got (called before each call)."""
        # a 429 got meanwhile may push the time further: look again after each wait
        for _ in range(10):
            left = self.blocked_for(method)
            if left <= 0:
                return
            await asyncio.sleep(left)
