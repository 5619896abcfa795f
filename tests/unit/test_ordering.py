"""OrderedExecutor: in order per key, concurrent across keys, nothing dropped, nothing left over."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from bridgekit.outbox.ordering import Job, OrderedExecutor


def recorder(log: list[object], item: object, delay: float = 0.0) -> Job:
    async def job() -> None:
        if delay:
            await asyncio.sleep(delay)
        log.append(item)

    return job


async def test_jobs_of_one_key_run_in_submission_order_despite_different_durations() -> None:
    ex = OrderedExecutor("test")
    done: list[int] = []
    delays = [0.05, 0.0, 0.03, 0.0, 0.01, 0.02, 0.0]
    for i, delay in enumerate(delays):
        ex.submit("portal", recorder(done, i, delay))
    await ex.wait_idle(timeout=5)
    assert done == list(range(len(delays)))


async def test_a_job_does_not_start_before_the_previous_job_of_its_key_finished() -> None:
    ex = OrderedExecutor("test")
    running = 0
    overlaps = 0

    async def job() -> None:
        nonlocal running, overlaps
        running += 1
        overlaps += running > 1
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1

    for _ in range(20):
        ex.submit("portal", job)
    await ex.wait_idle(timeout=5)
    assert overlaps == 0


async def test_two_keys_run_concurrently() -> None:
    ex = OrderedExecutor("test")
    b_ran = asyncio.Event()
    done: list[str] = []

    async def a_waits_for_b() -> None:
        await b_ran.wait()  # would deadlock if key B had to wait for key A
        done.append("a")

    async def b_signals() -> None:
        b_ran.set()
        done.append("b")

    ex.submit("A", a_waits_for_b)
    ex.submit("B", b_signals)
    await ex.wait_idle(timeout=5)
    assert done == ["b", "a"]


async def test_a_blocked_key_does_not_hold_up_later_jobs_of_other_keys() -> None:
    ex = OrderedExecutor("test")
    release = asyncio.Event()
    done: list[str] = []

    async def blocked() -> None:
        await release.wait()
        done.append("A1")

    ex.submit("A", blocked)
    ex.submit("A", recorder(done, "A2"))
    for i in range(3):
        ex.submit("B", recorder(done, f"B{i}"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert done == ["B0", "B1", "B2"]
    release.set()
    await ex.wait_idle(timeout=5)
    assert done == ["B0", "B1", "B2", "A1", "A2"]


async def test_a_failing_job_does_not_stop_later_jobs_of_its_key() -> None:
    errors: list[tuple[Hashable, BaseException]] = []
    ex = OrderedExecutor("test", on_error=lambda key, exc: errors.append((key, exc)))
    done: list[int] = []
    boom = ValueError("boom")

    async def failing() -> None:
        raise boom

    ex.submit("portal", recorder(done, 1))
    ex.submit("portal", failing)
    ex.submit("portal", recorder(done, 2))
    await ex.wait_idle(timeout=5)
    assert done == [1, 2]
    assert errors == [("portal", boom)]


async def test_an_on_error_hook_that_raises_does_not_stall_the_key() -> None:
    def broken_hook(key: Hashable, exc: BaseException) -> None:
        raise RuntimeError("hook is broken too")

    ex = OrderedExecutor("test", on_error=broken_hook)
    done: list[int] = []

    async def failing() -> None:
        raise ValueError("boom")

    ex.submit("portal", failing)
    ex.submit("portal", recorder(done, 1))
    await ex.wait_idle(timeout=5)
    assert done == [1]
    assert ex.active_keys() == 0


async def test_a_failing_job_is_logged_without_on_error(caplog: pytest.LogCaptureFixture) -> None:
    ex = OrderedExecutor("test")
    done: list[int] = []

    async def failing() -> None:
        raise RuntimeError("boom")

    ex.submit("portal", failing)
    ex.submit("portal", recorder(done, 1))
    await ex.wait_idle(timeout=5)
    assert done == [1]
    [record] = [r for r in caplog.records if r.name == "bridgekit.outbox.ordering"]
    assert record.exc_info is not None
    assert "portal" in record.getMessage()


async def test_idle_keys_leave_no_worker_tasks_or_queues() -> None:
    ex = OrderedExecutor("test")
    done: list[int] = []
    for key in range(100):
        ex.submit(key, recorder(done, key))
    assert ex.active_keys() == 100
    await ex.wait_idle(timeout=5)
    await asyncio.sleep(0)  # let the finished workers' tasks complete
    assert ex.active_keys() == 0
    assert ex._queues == {}
    assert ex.queue_depth() == 0
    executor_tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("test:")]
    assert executor_tasks == []


async def test_a_key_that_became_idle_gets_a_new_worker_for_new_work() -> None:
    ex = OrderedExecutor("test")
    done: list[str] = []
    ex.submit("portal", recorder(done, "first"))
    await ex.wait_idle(timeout=5)
    ex.submit("portal", recorder(done, "second"))
    await ex.wait_idle(timeout=5)
    assert done == ["first", "second"]


async def test_queue_depth_counts_jobs_not_yet_finished() -> None:
    ex = OrderedExecutor("test")
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    ex.submit("A", blocked)
    ex.submit("A", recorder([], 1))
    ex.submit("B", blocked)
    await asyncio.sleep(0)
    assert ex.queue_depth() == 3
    release.set()
    await ex.wait_idle(timeout=5)
    assert ex.queue_depth() == 0


async def test_wait_idle_times_out_while_work_is_pending() -> None:
    ex = OrderedExecutor("test")
    release = asyncio.Event()

    async def blocked() -> None:
        await release.wait()

    ex.submit("A", blocked)
    with pytest.raises(TimeoutError):
        await ex.wait_idle(timeout=0.05)
    release.set()
    await ex.wait_idle(timeout=5)


async def test_ten_thousand_jobs_all_run_in_order_per_key() -> None:
    ex = OrderedExecutor("test")
    keys = 37
    ran: dict[int, list[int]] = {k: [] for k in range(keys)}

    def job(key: int, n: int) -> Job:
        async def run() -> None:
            if n % 7 == 0:
                await asyncio.sleep(0)
            ran[key].append(n)

        return run

    for n in range(10_000):
        ex.submit(n % keys, job(n % keys, n))
    await ex.wait_idle(timeout=30)
    assert sum(len(v) for v in ran.values()) == 10_000
    for key, numbers in ran.items():
        assert numbers == list(range(key, 10_000, keys)), key
    assert ex.active_keys() == 0


async def test_jobs_submitted_by_a_running_job_run_after_it() -> None:
    ex = OrderedExecutor("test")
    done: list[str] = []

    async def parent() -> None:
        ex.submit("portal", recorder(done, "child"))
        done.append("parent")

    ex.submit("portal", parent)
    await ex.wait_idle(timeout=5)
    assert done == ["parent", "child"]


async def test_stop_lets_a_running_job_finish_and_drops_queued_ones() -> None:
    ex = OrderedExecutor("test")
    started = asyncio.Event()
    done: list[str] = []

    async def running() -> None:
        started.set()
        await asyncio.sleep(0.05)
        done.append("running")

    ex.submit("portal", running)
    ex.submit("portal", recorder(done, "queued"))
    await started.wait()
    await ex.stop(timeout=5)
    assert done == ["running"]
    assert ex.active_keys() == 0
    assert ex.queue_depth() == 0


async def test_stop_cancels_a_job_that_outlives_the_timeout() -> None:
    ex = OrderedExecutor("test")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    ex.submit("portal", forever)
    await started.wait()
    await ex.stop(timeout=0.05)
    assert cancelled.is_set()
    assert ex.active_keys() == 0


async def test_a_running_job_can_take_the_job_queued_behind_it() -> None:
    ex = OrderedExecutor("test")
    done: list[object] = []
    taken: list[Job | None] = []
    second = recorder(done, "second")

    async def first() -> None:
        taken.append(ex.take_next("k", lambda job: job is second))
        taken.append(ex.take_next("k", lambda job: True))  # "third" is next now
        done.append("first")

    third = recorder(done, "third")
    ex.submit("k", first)
    ex.submit("k", second)
    ex.submit("k", third)
    await ex.wait_idle(timeout=5)
    assert taken == [second, third]
    assert done == ["first"]  # taken jobs belong to the taker and do not run
    assert ex.queue_depth() == 0


async def test_take_next_leaves_a_refused_job_in_place() -> None:
    ex = OrderedExecutor("test")
    done: list[object] = []

    async def first() -> None:
        assert ex.take_next("k", lambda job: False) is None
        assert ex.take_next("other", lambda job: True) is None  # no such key
        done.append("first")

    ex.submit("k", first)
    ex.submit("k", recorder(done, "second"))
    await ex.wait_idle(timeout=5)
    assert done == ["first", "second"]
