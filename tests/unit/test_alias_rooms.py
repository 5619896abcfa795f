"""Edge cases of bounding rooms made from aliases (the end-to-end tests are in
tests/irc/test_e2e_alias_rooms.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from bridgekit.config import Config
from bridgekit.portal.alias_rooms import _LOG_LINES, AliasRooms


def rooms(
    store: Any = None, connectors: Any = None, portal_rooms: Any = None, **config: Any
) -> AliasRooms:
    settings = Config.from_dict({"bridge": {"alias_rooms": config}}).settings.bridge.alias_rooms
    return AliasRooms(
        settings=settings,
        store=store,
        matrix=SimpleNamespace(domain="x", bot_mxid="@bot:x"),  # type: ignore[arg-type]
        connectors=connectors or {},
        rooms=portal_rooms,
        spaces=None,  # type: ignore[arg-type]
        connector_for_ghost=lambda mxid: None,
    )


def test_the_rate_limit_is_per_network_and_refills(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("bridgekit.portal.alias_rooms.time.monotonic", lambda: now[0])
    ar = rooms(per_minute=2)
    assert ar._take("irc") and ar._take("irc")
    assert not ar._take("irc")
    assert ar._take("xmpp")  # another network has its own budget
    now[0] += 30  # half a minute: one room back
    assert ar._take("irc")
    assert not ar._take("irc")
    assert rooms(per_minute=0)._take("irc")  # 0: no limit


def test_refused_queries_are_logged_once_per_alias_and_capped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridgekit")
    ar = rooms()
    ar._refused("#a:x", "why")
    ar._refused("#a:x", "why")
    assert len(caplog.records) == 1
    for i in range(200):  # a loop over made-up names
        ar._refused(f"#made-up{i}:x", "why")
    assert len(caplog.records) == _LOG_LINES


async def test_aliases_added_to_an_existing_room_count_against_the_rate_limit() -> None:
    """A connector that reads many spellings as one chat must not let a stranger pile aliases
    onto its room: adding one takes from the same budget as making a room."""
    from bridgekit.contract.connector import AliasResolver
    from bridgekit.contract.events import PortalKey

    class AnySpelling(AliasResolver):
        name = "net"

        async def resolve_alias(self, alias_localpart: str) -> tuple[PortalKey, str | None]:
            return PortalKey("chat"), None

    added: list[str] = []
    portal = SimpleNamespace(mxid="!room:x", metadata={})

    async def get_portal(network: str, key: PortalKey) -> Any:
        return portal

    async def add_alias(p: Any, localpart: str) -> bool:
        added.append(localpart)
        return True

    ar = rooms(
        store=SimpleNamespace(get_portal=get_portal),
        connectors={"net": AnySpelling()},
        portal_rooms=SimpleNamespace(add_alias=add_alias),
        per_minute=2,
    )
    answers = [await ar.query(f"#spelling{i}:x") for i in range(5)]
    assert answers == [True, True, False, False, False]
    assert added == ["spelling0", "spelling1"]
