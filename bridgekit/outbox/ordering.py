"""Per-key ordered execution: one portal's events run in order, different portals in parallel.

Each key gets a worker task only while it has work, so ten thousand idle portals cost nothing.
Queues are unbounded deques: nothing is ever dropped (the durable inbox/outbox bound memory by
refusing new input upstream, see ``pending``). A job must never wait for a later job of its own
key - that would deadlock - which is why the runtime's handlers never await their own queue.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("bridgekit.outbox.ordering")

Job = Callable[[], Awaitable[None]]


class OrderedExecutor:
    def __init__(
        self, name: str, on_error: Callable[[Hashable, BaseException], None] | None = None
    ):
        self.name = name
        self._queues: dict[Hashable, deque[Job]] = {}
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.pending = 0
        self.on_error = on_error
        self._stopping = False

    def submit(self, key: Hashable, job: Job) -> None:
        """Queue ``job`` after every earlier job of ``key``. Never blocks, never drops."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(job)
        self.pending += 1
        self._idle.clear()
        if key not in self._workers and not self._stopping:
            self._workers[key] = asyncio.create_task(self._run(key), name=f"{self.name}:{key}")

    async def _run(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue and not self._stopping:
                job = queue[0]
                try:
                    await job()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # a job's failure must not stall its portal
                    log.exception("%s job for %s failed", self.name, key)
                    if self.on_error:
                        try:
                            self.on_error(key, e)
                        except Exception:  # nor may a failing error hook
                            log.exception("%s on_error for %s failed", self.name, key)
                queue.popleft()
                self.pending -= 1
        finally:
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)
            if self.pending == 0:
                self._idle.set()

    def take_next(self, key: Hashable, accept: Callable[[Job], bool]) -> Job | None:
        """Remove and return the job queued right after ``key``'s running one, if ``accept``
        says so. For a running job that absorbs work queued behind it (a merged send); the
        caller then owns the taken job, which will not run."""
        queue = self._queues.get(key)
        if queue is None or len(queue) < 2 or not accept(queue[1]):
            return None
        job = queue[1]
        del queue[1]
        self.pending -= 1
        return job

    def queued(self, key: Hashable) -> int:
        """Jobs of ``key`` not yet finished, the running one included."""
        queue = self._queues.get(key)
        return len(queue) if queue is not None else 0

    def behind(self, key: Hashable) -> list[Job]:
        """The jobs queued behind ``key``'s running one, in order (to look at, not to run)."""
        queue = self._queues.get(key)
        return list(itertools.islice(queue, 1, None)) if queue is not None else []

    def queue_depth(self) -> int:
        return self.pending

    def active_keys(self) -> int:
        return len(self._workers)

    async def wait_idle(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, timeout: float = 10.0) -> None:
        """Let running jobs finish (up to ``timeout``), then cancel. Queued jobs stay durable."""
        self._stopping = True
        tasks = list(self._workers.values())
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=timeout)
            for t in still:
                t.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
        self._queues.clear()
        self.pending = 0
