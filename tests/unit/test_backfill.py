"""bridgekit/portal/backfill.py's paging against connectors that misbehave (no homeserver needed:
the end-to-end behaviour is in tests/test_e2e_backfill.py), and its configuration's validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridgekit.bridge import discover_connectors
from bridgekit.config import Config
from bridgekit.contract.capabilities import BACKWARD, BackfillHandler, FetchResult
from bridgekit.contract.events import EventSender, MessageContent, PortalKey, RemoteMessage
from bridgekit.database.records import PortalRow
from bridgekit.portal.backfill import Backfill, BackfillState


def msg(i: int, chat: str = "chat") -> RemoteMessage:
    return RemoteMessage(
        PortalKey(chat), EventSender("bob"), id=f"m{i}", content=MessageContent(f"{i}")
    )


class Network(BackfillHandler):
    """Answers every fetch with the next of ``answers`` (the last one again when they run out)."""

    def __init__(self, *answers: FetchResult) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[Any, ...]] = []

    async def fetch_messages(self, portal, anchor, direction, limit, cursor=None) -> FetchResult:
        self.calls.append((anchor, direction, limit, cursor))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return FetchResult(list(answer.messages), answer.cursor, answer.has_more)


class Stub:
    """What Backfill uses: config, the store's newest remote id and its state table (in
    memory), and the portal path messages go through."""

    def __init__(self, **backfill: Any) -> None:
        self.config = Config.from_dict({"bridge": {"backfill": backfill}})
        self.sent: list[RemoteMessage] = []
        self.rows: dict[Any, BackfillState] = {}

    async def last_remote_message(self, network: str, key: PortalKey) -> str | None:
        return self.sent[-1].id if self.sent else None

    async def remote_message(self, portal: PortalRow, login_id: Any, m: RemoteMessage, seq: Any):
        self.sent.append(m)


async def run_catch_up(stub: Stub, network: Network, anchor: str | None = "m0") -> Backfill:
    async def queue(login_id: Any, event: Any) -> None:
        raise AssertionError("a catch-up queues nothing here")

    backfill = Backfill(
        config=stub.config,
        store=stub,  # type: ignore[arg-type]
        clients={},
        queue_remote_event=queue,
        send_message=stub.remote_message,
    )

    async def state(portal: PortalRow) -> BackfillState | None:
        return stub.rows.get(portal.key)

    async def save(portal: PortalRow, st: BackfillState) -> None:
        stub.rows[portal.key] = st

    backfill.state = state  # type: ignore[method-assign]
    backfill.save = save  # type: ignore[method-assign]
    await backfill._catch_up(PortalRow("fake", PortalKey("chat")), None, network, anchor, 1)
    return backfill


async def test_a_connector_that_says_more_but_moves_nowhere_is_asked_once() -> None:
    stub = Stub(catchup_limit=1000, page_size=10)
    network = Network(FetchResult([], cursor="c1", has_more=True))
    await run_catch_up(stub, network, anchor="m0")
    assert len(network.calls) == 2  # "c1" was new once; the same cursor again ends it
    assert network.calls[1][3] == "c1"


async def test_catch_up_stops_at_its_limit_and_takes_what_follows_the_anchor() -> None:
    stub = Stub(catchup_limit=5, page_size=3)
    # A connector that ignores the limit and always has more.
    network = Network(
        FetchResult([msg(i) for i in range(1, 9)], "p1", True),
        FetchResult([msg(i) for i in range(9, 20)], "p2", True),
    )
    await run_catch_up(stub, network)
    assert [m.id for m in stub.sent] == ["m1", "m2", "m3", "m9", "m10"]
    assert [c[2] for c in network.calls] == [3, 2]


async def test_fetched_messages_land_in_the_portal_asked_for() -> None:
    stub = Stub(page_size=10)
    await run_catch_up(stub, Network(FetchResult([msg(1, chat="elsewhere")])))
    assert [(m.portal, m.network) for m in stub.sent] == [(PortalKey("chat"), "fake")]


async def test_nothing_bridged_and_no_cursor_means_no_catch_up() -> None:
    stub = Stub()
    network = Network(FetchResult([msg(1)]))
    await run_catch_up(stub, network, anchor=None)
    assert network.calls == [] and stub.sent == []


async def test_history_keeps_the_newest_and_sends_oldest_first() -> None:
    stub = Stub(initial_limit=4, page_size=3)
    network = Network(
        FetchResult([msg(i) for i in range(5, 10)], "c5", True),  # more than asked: newest 3
        FetchResult([msg(i) for i in range(2, 5)], "c2", True),
    )
    backfill = await run_catch_up(stub, Network(FetchResult([])), anchor=None)
    await backfill._history(PortalRow("fake", PortalKey("chat")), network, "t")
    assert [m.id for m in stub.sent] == ["m4", "m7", "m8", "m9"]
    assert network.calls == [(None, BACKWARD, 3, None), ("m7", BACKWARD, 1, "c5")]
    state = stub.rows[PortalKey("chat")]
    assert state.initial_done and state.backward_more and state.backward_cursor == "c2"


def test_backfill_keys_are_validated(tmp_path: Path) -> None:
    config = Config.from_dict(
        {"bridge": {"backfill": {"initial_limit": -1, "page_size": "x", "catchup": "yes"}}}
    )
    keys = {p.key for p in config.validate(discover_connectors())}
    assert {
        "bridge.backfill.initial_limit",
        "bridge.backfill.page_size",
        "bridge.backfill.catchup",
    } <= keys


class EmptyPages(BackfillHandler):
    """Always "more", never a message, a new cursor each time (a filtered page, or a broken
    or hostile server): the cursor moves, so it is not stuck, yet nothing is ever sent."""

    def __init__(self) -> None:
        self.calls = 0

    async def fetch_messages(self, portal, anchor, direction, limit, cursor=None) -> FetchResult:
        self.calls += 1
        if self.calls > 1000:
            raise AssertionError("still fetching after 1000 empty pages")
        return FetchResult([], f"c{self.calls}", True)


async def test_empty_pages_with_a_moving_cursor_end_the_catch_up() -> None:
    network = EmptyPages()
    await run_catch_up(Stub(catchup_limit=100, page_size=10), network)
    assert network.calls <= 20


async def test_empty_pages_with_a_moving_cursor_end_the_history() -> None:
    stub = Stub(initial_limit=100, page_size=10)
    backfill = await run_catch_up(stub, Network(FetchResult([])), anchor=None)
    network = EmptyPages()
    await backfill._history(PortalRow("fake", PortalKey("chat")), network, "t")
    assert network.calls <= 20 and stub.rows[PortalKey("chat")].initial_done
