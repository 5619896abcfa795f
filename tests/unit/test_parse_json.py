"""``parse_json``: a transaction body read by orjson where it gives json's answer, by json
otherwise, so what the bridge sees never depends on which parser read it."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bridgekit.matrix import appservice
from bridgekit.matrix.appservice import parse_json

CASES = {
    "ordinary": b'{"events": [{"type": "m.room.message", "content": {"body": "hi \\u00e9"}}]}',
    "nan and infinity": b'{"a": NaN, "b": Infinity, "c": -Infinity}',
    "lone surrogate escape": b'{"body": "\\ud800 and \\udfff"}',
    "surrogate pair escape": b'{"body": "\\ud83d\\ude00"}',
    "integer past 64 bits": b'{"n": 123456789012345678901234567890}',
    "integer past u64": b'{"n": 18446744073709551616}',
    "negative integer past 63 bits": b'{"n": -9223372036854775809}',
    "largest exact orjson int": b'{"n": 999999999999999999}',
    "float past double range": b'{"x": 1e400}',
    "long digit run in a string": b'{"id": "$1234567890123456789012"}',
    "duplicate keys": b'{"a": 1, "a": 2}',
    "negative zero": b'{"a": -0.0, "b": -0}',
    "escaped nul": b'{"a": "\\u0000"}',
    "not json": b'{"events": [',
    "trailing garbage": b"{} x",
    "bare control character": b'{"a": "\x01"}',
    "top-level scalar": b"3",
}


def _canon(value: Any) -> Any:
    """Comparable across NaN (NaN != NaN) and exact about types (1 == 1.0 == True)."""
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


def _outcome(parse: Any, raw: bytes) -> Any:
    try:
        return _canon(parse(raw))
    except ValueError as e:  # JSONDecodeError included
        return ("error", type(e).__name__)


@pytest.mark.parametrize("raw", list(CASES.values()), ids=list(CASES))
def test_parse_json_answers_as_json_does(raw: bytes) -> None:
    expected = _outcome(lambda b: json.loads(b.decode("utf-8")), raw)
    assert _outcome(lambda b: parse_json(b, b.decode("utf-8")), raw) == expected


def test_numbers_orjson_would_round_stay_exact_ints() -> None:
    raw = b'{"a": 123456789012345678901234567890, "b": -9223372036854775809}'
    data = parse_json(raw, raw.decode())
    assert data == {"a": 123456789012345678901234567890, "b": -9223372036854775809}
    assert all(type(v) is int for v in data.values())


def test_ordinary_bodies_are_read_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken (else the dependency would be dead weight)."""
    pytest.importorskip("orjson")

    def no_json(_: str) -> Any:
        raise AssertionError("json.loads used for an ordinary body")

    monkeypatch.setattr(appservice.json, "loads", no_json)
    raw = CASES["ordinary"]
    assert parse_json(raw, raw.decode())["events"][0]["content"]["body"] == "hi \u00e9"
