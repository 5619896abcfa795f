"""The Application Service API as the homeserver sees it: auth, errors, transactions, queries."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from bridgekit.matrix.appservice import PREFIX, AppServiceServer, TxnKey, events_digest
from bridgekit.testing.ports import free_port

HS_TOKEN = "hs" + "7f3a9c" * 10
MAX_BODY = 4096


@dataclass
class FakeSink:
    """An in-memory TransactionSink that records what the HTTP layer handed it."""

    stored: dict[TxnKey, str | None] = field(default_factory=dict)
    dispatched: list[tuple[TxnKey, dict[str, Any]]] = field(default_factory=list)
    user_queries: list[str] = field(default_factory=list)
    alias_queries: list[str] = field(default_factory=list)
    known_users: set[str] = field(default_factory=set)
    known_aliases: set[str] = field(default_factory=set)
    protocols: dict[str, dict[str, Any]] = field(default_factory=dict)
    thirdparty_calls: list[tuple[str, str | None, dict[str, str]]] = field(default_factory=list)

    async def store_transaction(self, txn: TxnKey, body: str | None) -> bool:
        if txn in self.stored:
            return False
        self.stored[txn] = body
        return True

    def dispatch_transaction(self, txn: TxnKey, data: dict[str, Any]) -> None:
        self.dispatched.append((txn, data))

    async def wait_for_capacity(self) -> None:
        return None

    async def query_user(self, user_id: str) -> bool:
        self.user_queries.append(user_id)
        return user_id in self.known_users

    async def query_alias(self, alias: str) -> bool:
        self.alias_queries.append(alias)
        return alias in self.known_aliases

    async def thirdparty(
        self, kind: str, protocol: str | None, query: dict[str, str]
    ) -> list[dict[str, Any]] | dict[str, Any] | None:
        self.thirdparty_calls.append((kind, protocol, query))
        if kind == "protocol":
            return self.protocols.get(protocol or "")
        return [] if protocol not in self.protocols else [{"protocol": protocol, "fields": query}]


@dataclass
class Running:
    sink: FakeSink
    server: AppServiceServer
    base: str
    http: aiohttp.ClientSession
    pings: list[str | None]

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    async def request(
        self, method: str, path: str, *, token: str | None = HS_TOKEN, **kwargs: Any
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, self.url(path), headers=headers, **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


@pytest.fixture
async def appservice() -> AsyncIterator[Running]:
    """The server started the way the bridge starts it (its own runner, on a real port)."""
    sink = FakeSink()
    pings: list[str | None] = []

    async def on_ping(txn: str | None) -> None:
        pings.append(txn)

    server = AppServiceServer(sink, HS_TOKEN, max_body_size=MAX_BODY, on_ping=on_ping)
    port = free_port()
    await server.start("127.0.0.1", port)
    async with aiohttp.ClientSession() as http:
        yield Running(sink, server, f"http://127.0.0.1:{port}", http, pings)
    await server.stop()


TXN = PREFIX + "/transactions/{}"
EVENT = {"type": "m.room.message", "event_id": "$1", "room_id": "!r:x", "content": {"body": "hi"}}


# -- authentication --------------------------------------------------------------------------


async def test_request_without_a_token_is_401_unauthorized(appservice: Running) -> None:
    status, body = await appservice.request("PUT", TXN.format("t1"), token=None, json={})
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")
    assert appservice.sink.stored == {}


async def test_request_with_a_wrong_bearer_token_is_403_forbidden(appservice: Running) -> None:
    status, body = await appservice.request("PUT", TXN.format("t1"), token="wrong", json={})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert appservice.sink.stored == {}


async def test_request_with_a_token_prefix_is_403_forbidden(appservice: Running) -> None:
    status, body = await appservice.request("PUT", TXN.format("t1"), token=HS_TOKEN[:-1], json={})
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_non_bearer_authorization_counts_as_no_token(appservice: Running) -> None:
    status, body = await appservice.request(
        "PUT", TXN.format("t1"), token=None, headers={"Authorization": f"Basic {HS_TOKEN}"}, json={}
    )
    assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")


async def test_queries_need_the_token_too(appservice: Running) -> None:
    appservice.sink.known_users.add("@_fake_a:example.org")
    status, body = await appservice.request(
        "GET", PREFIX + "/users/@_fake_a:example.org", token="wrong"
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert appservice.sink.user_queries == []


async def test_legacy_access_token_query_parameter_is_accepted_when_it_matches(
    appservice: Running,
) -> None:
    status, body = await appservice.request(
        "PUT", TXN.format("t1"), token=None, params={"access_token": HS_TOKEN}, json={"events": []}
    )
    assert (status, body) == (200, {})
    assert list(appservice.sink.stored) == [("t1", "")]


async def test_legacy_access_token_query_parameter_is_refused_when_wrong(
    appservice: Running,
) -> None:
    status, body = await appservice.request(
        "PUT", TXN.format("t1"), token=None, params={"access_token": "nope"}, json={"events": []}
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert appservice.sink.stored == {}


# -- malformed requests ----------------------------------------------------------------------


async def test_malformed_json_is_400_not_json(appservice: Running) -> None:
    status, body = await appservice.request("PUT", TXN.format("t1"), data=b'{"events": [')
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    assert appservice.sink.stored == {}


async def test_body_that_is_not_utf8_is_400_not_json(appservice: Running) -> None:
    status, body = await appservice.request("PUT", TXN.format("t1"), data=b'{"a": "\xff"}')
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")


@pytest.mark.parametrize("path", [TXN.format("t1"), PREFIX + "/ping"])
async def test_json_nested_deeper_than_the_parser_goes_is_400_not_500(
    appservice: Running, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Valid JSON, but too deep for the parser (RecursionError): a 5xx would be retried by the
    homeserver forever, with every later transaction waiting behind it."""
    depth = 1500
    deep = '{"events": [{"content": ' + "[" * depth + "]" * depth + "}]}"
    for _ in range(3):  # retried: answered the same, logged once
        method = "POST" if "ping" in path else "PUT"
        status, body = await appservice.request(method, path, data=deep)
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    assert appservice.sink.stored == {} and appservice.sink.dispatched == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert not caplog.records[0].exc_info, "one short line, no traceback"


@pytest.mark.parametrize("payload", [[], "text", 3, None], ids=["list", "string", "number", "null"])
async def test_json_that_is_not_an_object_is_400_bad_json(
    appservice: Running, payload: Any
) -> None:
    status, body = await appservice.request(
        "PUT", TXN.format("t1"), data=json.dumps(payload).encode()
    )
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert appservice.sink.stored == {}


@pytest.mark.parametrize("key", ["events", "ephemeral", "to_device"])
async def test_event_list_that_is_not_a_list_is_400_bad_json(appservice: Running, key: str) -> None:
    status, body = await appservice.request("PUT", TXN.format("t1"), json={key: {"a": 1}})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    assert appservice.sink.stored == {}


async def test_body_over_the_limit_with_content_length_is_413(appservice: Running) -> None:
    payload = json.dumps({"events": [], "pad": "x" * MAX_BODY}).encode()
    status, body = await appservice.request("PUT", TXN.format("big"), data=payload)
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    assert appservice.sink.stored == {}


def body_of_size(size: int) -> bytes:
    payload = json.dumps({"events": [], "pad": ""}).encode()
    payload = payload.replace(b'""', b'"' + b"x" * (size - len(payload)) + b'"')
    assert len(payload) == size
    return payload


async def test_body_of_exactly_the_limit_is_accepted(appservice: Running) -> None:
    status, body = await appservice.request("PUT", TXN.format("ok"), data=body_of_size(MAX_BODY))
    assert (status, body) == (200, {})
    assert list(appservice.sink.stored) == [("ok", "")]


async def test_body_one_byte_over_the_limit_is_413(appservice: Running) -> None:
    payload = body_of_size(MAX_BODY + 1)
    status, body = await appservice.request("PUT", TXN.format("big"), data=payload)
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")


async def test_body_over_the_limit_sent_chunked_is_413(appservice: Running) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": [], "pad": "'
        for _ in range(MAX_BODY // 512 + 2):
            yield b"x" * 512
        yield b'"}'

    status, body = await appservice.request("PUT", TXN.format("big"), data=chunks())
    assert (status, body["errcode"]) == (413, "M_TOO_LARGE")
    assert appservice.sink.stored == {}


async def test_body_of_exactly_the_limit_sent_chunked_is_accepted(appservice: Running) -> None:
    payload = body_of_size(MAX_BODY)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 500):
            yield payload[i : i + 500]

    status, body = await appservice.request("PUT", TXN.format("ok"), data=chunks())
    assert (status, body) == (200, {})
    assert list(appservice.sink.stored) == [("ok", "")]


async def test_unknown_path_under_matrix_app_is_404_unrecognized(appservice: Running) -> None:
    status, body = await appservice.request("GET", PREFIX + "/nonsense")
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")


async def test_unknown_path_under_matrix_is_404_unrecognized(appservice: Running) -> None:
    status, body = await appservice.request("GET", "/_matrix/client/v3/sync", token=None)
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")


async def test_wrong_method_on_transactions_is_405_unrecognized(appservice: Running) -> None:
    status, body = await appservice.request("GET", TXN.format("t1"))
    assert (status, body["errcode"]) == (405, "M_UNRECOGNIZED")


async def test_wrong_method_response_lists_the_allowed_method(appservice: Running) -> None:
    async with appservice.http.post(
        appservice.url(TXN.format("t1")), headers={"Authorization": f"Bearer {HS_TOKEN}"}
    ) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "PUT"


# -- transactions ----------------------------------------------------------------------------


async def test_transaction_is_stored_verbatim_and_dispatched(appservice: Running) -> None:
    raw = json.dumps({"events": [EVENT]})
    status, body = await appservice.request("PUT", TXN.format("t1"), data=raw.encode())
    assert (status, body) == (200, {})
    key = ("t1", events_digest({"events": [EVENT]}))
    assert appservice.sink.stored == {key: raw}
    assert appservice.sink.dispatched == [(key, {"events": [EVENT]})]


async def test_same_txn_id_twice_is_acknowledged_twice_and_dispatched_once(
    appservice: Running,
) -> None:
    first = await appservice.request("PUT", TXN.format("t1"), json={"events": [EVENT]})
    second = await appservice.request("PUT", TXN.format("t1"), json={"events": [EVENT]})
    assert first == (200, {})
    assert second == (200, {})
    assert [txn for (txn, _), _ in appservice.sink.dispatched] == ["t1"]


async def test_a_txn_id_reused_with_new_events_is_dispatched_again(appservice: Running) -> None:
    """A homeserver that restarted numbers its transactions again: same id, other events."""
    other = {**EVENT, "event_id": "$2", "content": {"body": "new"}}
    assert await appservice.request("PUT", TXN.format("1"), json={"events": [EVENT]}) == (200, {})
    assert await appservice.request("PUT", TXN.format("1"), json={"events": [other]}) == (200, {})
    assert [data["events"] for _, data in appservice.sink.dispatched] == [[EVENT], [other]]


async def test_a_retry_is_recognised_by_its_events_not_its_bytes(appservice: Running) -> None:
    """Synapse's retry of a transaction serialises its events again (their unsigned.age has
    grown) and leaves out the ephemeral events: still a retry."""
    first = {"events": [{**EVENT, "unsigned": {"age": 5}}], "ephemeral": [{"type": "m.typing"}]}
    retry = {"events": [{**EVENT, "unsigned": {"age": 9000}}]}
    assert await appservice.request("PUT", TXN.format("1"), json=first) == (200, {})
    assert await appservice.request("PUT", TXN.format("1"), json=retry) == (200, {})
    assert [data for _, data in appservice.sink.dispatched] == [first]


def test_the_events_digest_depends_on_the_event_ids_and_their_order() -> None:
    a, b = {**EVENT, "event_id": "$a"}, {**EVENT, "event_id": "$b"}
    assert events_digest({"events": [a, b]}) == events_digest({"events": [a, {**b, "x": 1}]})
    assert events_digest({"events": [a, b]}) != events_digest({"events": [b, a]})
    assert events_digest({"events": [a]}) != events_digest({"events": [a, b]})
    assert events_digest({"events": []}) == events_digest({"ephemeral": [{}]}) == ""
    assert events_digest({"events": ["junk", {"event_id": 5}]}) == ""


async def test_different_txn_ids_are_each_dispatched(appservice: Running) -> None:
    for txn in ("t1", "t2"):
        assert await appservice.request("PUT", TXN.format(txn), json={"events": []}) == (200, {})
    assert [txn for (txn, _), _ in appservice.sink.dispatched] == ["t1", "t2"]


async def test_transaction_with_ephemeral_events_only_is_accepted(appservice: Running) -> None:
    payload = {"de.sorunome.msc2409.ephemeral": [{"type": "m.typing"}]}
    assert await appservice.request("PUT", TXN.format("e1"), json=payload) == (200, {})
    assert appservice.sink.dispatched == [(("e1", ""), payload)]


async def test_transaction_is_acknowledged_only_after_it_is_stored(appservice: Running) -> None:
    gate = asyncio.Event()
    original = appservice.sink.store_transaction

    async def slow_store(txn: TxnKey, body: str | None) -> bool:
        await gate.wait()
        return await original(txn, body)

    appservice.sink.store_transaction = slow_store  # type: ignore[method-assign]
    request = asyncio.ensure_future(appservice.request("PUT", TXN.format("t1"), json={}))
    await asyncio.sleep(0.2)
    assert not request.done()
    gate.set()
    assert await request == (200, {})
    assert list(appservice.sink.stored) == [("t1", "")]


async def test_failing_sink_gives_500_so_the_homeserver_retries(appservice: Running) -> None:
    async def broken(txn: TxnKey, body: str | None) -> bool:
        raise RuntimeError("database is down")

    appservice.sink.store_transaction = broken  # type: ignore[method-assign]
    status, body = await appservice.request("PUT", TXN.format("t1"), json={})
    assert (status, body["errcode"]) == (500, "M_UNKNOWN")
    assert appservice.sink.dispatched == []


async def test_a_failure_the_homeserver_retries_logs_its_traceback_once_a_minute(
    appservice: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """The database down: every retry is a 500, but the log gets one traceback per cause."""

    async def broken(txn: TxnKey, body: str | None) -> bool:
        raise RuntimeError("database is down")

    appservice.sink.store_transaction = broken  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="bridgekit.matrix.appservice")
    for _ in range(5):
        status, _body = await appservice.request("PUT", TXN.format("t1"), json={})
        assert status == 500
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "database is down" in str(tracebacks[0].exc_info[1])
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == tracebacks


# -- queries ---------------------------------------------------------------------------------


async def test_user_query_for_a_known_user_is_200(appservice: Running) -> None:
    appservice.sink.known_users.add("@_fake_alice:example.org")
    status, body = await appservice.request("GET", PREFIX + "/users/@_fake_alice:example.org")
    assert (status, body) == (200, {})


async def test_user_query_for_an_unknown_user_is_404(appservice: Running) -> None:
    status, body = await appservice.request("GET", PREFIX + "/users/@nobody:example.org")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert appservice.sink.user_queries == ["@nobody:example.org"]


async def test_alias_query_for_a_known_alias_is_200(appservice: Running) -> None:
    appservice.sink.known_aliases.add("#_fake_general:example.org")
    status, body = await appservice.request("GET", PREFIX + "/rooms/%23_fake_general:example.org")
    assert (status, body) == (200, {})


async def test_alias_query_for_an_unknown_alias_is_404(appservice: Running) -> None:
    status, body = await appservice.request("GET", PREFIX + "/rooms/%23nope:example.org")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    assert appservice.sink.alias_queries == ["#nope:example.org"]


async def test_percent_encoded_query_ids_are_decoded_exactly_once(appservice: Running) -> None:
    # The alias "#100%41:example.org" (a literal percent sign), as the homeserver encodes it.
    await appservice.request("GET", PREFIX + "/rooms/%23100%2541%3Aexample.org")
    await appservice.request("GET", PREFIX + "/users/%40a%2541%3Aexample.org")
    await appservice.request("GET", PREFIX + "/users/%40a%2Fb%3Aexample.org")
    assert appservice.sink.alias_queries == ["#100%41:example.org"]
    assert appservice.sink.user_queries == ["@a%41:example.org", "@a/b:example.org"]


async def test_ping_is_200_with_an_empty_object(appservice: Running) -> None:
    status, body = await appservice.request("POST", PREFIX + "/ping", json={"transaction_id": "p1"})
    assert (status, body) == (200, {})
    assert appservice.pings == ["p1"]


async def test_ping_without_transaction_id_is_200(appservice: Running) -> None:
    assert await appservice.request("POST", PREFIX + "/ping", json={}) == (200, {})
    assert appservice.pings == [None]


async def test_thirdparty_known_protocol_is_200_with_its_description(appservice: Running) -> None:
    appservice.sink.protocols["fake"] = {"user_fields": ["name"], "instances": []}
    status, body = await appservice.request("GET", PREFIX + "/thirdparty/protocol/fake")
    assert (status, body) == (200, {"user_fields": ["name"], "instances": []})


async def test_thirdparty_unknown_protocol_is_404(appservice: Running) -> None:
    status, body = await appservice.request("GET", PREFIX + "/thirdparty/protocol/nope")
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_thirdparty_lookup_passes_fields_but_never_the_token(appservice: Running) -> None:
    appservice.sink.protocols["fake"] = {}
    status, body = await appservice.request(
        "GET",
        PREFIX + "/thirdparty/location/fake",
        token=None,
        params={"access_token": HS_TOKEN, "chat": "general"},
    )
    assert (status, body) == (200, [{"protocol": "fake", "fields": {"chat": "general"}}])
    assert appservice.sink.thirdparty_calls == [("location", "fake", {"chat": "general"})]


# -- secrecy ---------------------------------------------------------------------------------


async def test_hs_token_never_appears_in_logs(
    appservice: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def broken(txn: TxnKey, body: str | None) -> bool:
        raise RuntimeError("boom")

    r = appservice
    await r.request("PUT", TXN.format("t1"), json={"events": [EVENT]})
    await r.request("PUT", TXN.format("t1"), json={"events": [EVENT]})  # a retry (logged)
    await r.request("PUT", TXN.format("t2"), token=None, params={"access_token": HS_TOKEN}, json={})
    await r.request("PUT", TXN.format("t3"), token=None, params={"access_token": "x" + HS_TOKEN})
    await r.request("PUT", TXN.format("t4"), token=HS_TOKEN + "x", json={})
    await r.request("PUT", TXN.format("t5"), data=b"{not json")
    await r.request("GET", PREFIX + "/nonsense", token=None, params={"access_token": HS_TOKEN})
    await r.request("GET", TXN.format("t6"), token=None, params={"access_token": HS_TOKEN})
    await r.request("GET", PREFIX + "/users/@x:example.org")
    await r.request("POST", PREFIX + "/ping", json={})
    r.sink.store_transaction = broken  # type: ignore[method-assign]
    await r.request("PUT", TXN.format("t7"), token=None, params={"access_token": HS_TOKEN}, json={})

    assert caplog.records, "expected the server to log something at DEBUG"
    assert any("already received" in rec.getMessage() for rec in caplog.records)
    assert any(rec.exc_info for rec in caplog.records), "the sink failure should be logged"
    for rec in caplog.records:
        text = rec.getMessage() + repr(rec.args) + (str(rec.exc_info) if rec.exc_info else "")
        assert HS_TOKEN not in text, f"token leaked by {rec.name}: {rec.getMessage()}"
    assert HS_TOKEN not in caplog.text
