"""Each remote event kind reaches its handler through an explicit table (remote_to_matrix.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from bridgekit.contract import events
from bridgekit.contract.events import PortalKey, RemoteEvent, RemoteMessage
from bridgekit.portal.remote_to_matrix import (
    ROOM_EVENT_HANDLERS,
    RemoteToMatrix,
    room_event_handler,
)


def test_every_kind_the_contract_defines_has_a_handler() -> None:
    kinds = {
        cls
        for cls in vars(events).values()
        if isinstance(cls, type) and issubclass(cls, RemoteEvent) and cls is not RemoteEvent
    }
    user_level = {events.RemoteUserInfoChange}  # not a room's: handle_remote_event says so
    missing = {k.__name__ for k in kinds - user_level if room_event_handler(k) is None}
    assert not missing, f"remote event kinds without a handler: {sorted(missing)}"
    assert set(ROOM_EVENT_HANDLERS) <= kinds


def test_a_subclass_goes_to_its_base_handler() -> None:
    @dataclass
    class ConnectorMessage(RemoteMessage):
        kind: ClassVar[str] = "connector_message_for_test"

    assert room_event_handler(ConnectorMessage) is ROOM_EVENT_HANDLERS[RemoteMessage]


async def test_an_unknown_kind_is_dropped_with_a_log_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @dataclass
    class Unknown(RemoteEvent):
        kind: ClassVar[str] = "unknown_for_test"

    calls: list[Any] = []
    # Nothing of the service is touched for a kind it cannot handle: no portal is created.
    stub = SimpleNamespace(rooms=SimpleNamespace(get_or_create=lambda *a: calls.append(a)))
    with caplog.at_level(logging.ERROR):
        await RemoteToMatrix.handle_remote_event(
            stub, "fake", None, Unknown(portal=PortalKey("c")), 1
        )
    assert calls == []
    assert "unknown_for_test" in caplog.text
