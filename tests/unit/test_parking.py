"""Replay counting and parking (parking.py), on SQLite and PostgreSQL (``BRIDGEKIT_TEST_DB``)."""

from __future__ import annotations

from bridgekit.metrics import Metrics
from bridgekit.outbox.parking import REPLAY_ATTEMPTS, Parking
from tests.unit.test_store import Opener, open_store  # noqa: F401 - the fixture


async def test_replays_are_counted_across_restarts_then_the_item_is_parked(
    open_store: Opener,  # noqa: F811
) -> None:
    for _ in range(REPLAY_ATTEMPTS):
        parking = Parking(await open_store(), Metrics())
        await parking.load()
        assert await parking.replay("outbox", "7")
    metrics = Metrics()
    parking = Parking(await open_store(), metrics)
    await parking.load()
    assert not await parking.replay("outbox", "7")
    assert parking.is_parked("outbox", "7") and metrics.parked == {"transaction": 0, "outbox": 1}
    again = Parking(await open_store(), Metrics())
    await again.load()
    assert again.is_parked("outbox", "7") and not again.is_parked("transaction", "7")


async def test_finished_items_are_forgotten_and_kv_keys_alike_are_left_alone(
    open_store: Opener,  # noqa: F811
) -> None:
    store = await open_store()
    await store.set_kv("replay_", "not ours")  # a prefix match must be literal
    parking = Parking(store, Metrics())
    await parking.replay("transaction", "t1")
    await parking.replay("transaction", "t2")
    await parking.keep_only("transaction", ["t2"])
    restarted = Parking(await open_store(), Metrics())
    await restarted.load()
    assert restarted.attempts["transaction"] == {"t2": 1}
    assert await store.get_kv("replay_") == "not ours"


async def test_a_replay_cut_short_by_a_stop_is_not_counted(
    open_store: Opener,  # noqa: F811
) -> None:
    store = await open_store()
    parking = Parking(store, Metrics())
    assert await parking.replay("outbox", "3")
    assert await parking.replay("outbox", "3")
    parking.interrupted("outbox", "3")
    parking.interrupted("outbox", "3")  # once per run, however many jobs it had
    await store.flush()
    restarted = Parking(await open_store(), Metrics())
    await restarted.load()
    assert restarted.attempts["outbox"] == {"3": 1}
    restarted.interrupted("outbox", "3")
    await restarted.store.flush()
    again = Parking(await open_store(), Metrics())
    await again.load()
    assert again.attempts["outbox"] == {}
