"""What a connector says about a chat's container is checked before it reaches room state."""

from __future__ import annotations

from bridgekit.contract.events import SpaceInfo
from bridgekit.portal.spaces import MAX_ID, MAX_TEXT, _clean


def test_a_container_without_an_id_is_no_space() -> None:
    assert _clean(SpaceInfo("")) is None
    assert _clean(SpaceInfo(None)) is None  # type: ignore[arg-type]
    assert _clean({"id": "x"}) is None  # type: ignore[arg-type]


def test_an_over_long_id_or_a_bad_receiver_is_refused() -> None:
    assert _clean(SpaceInfo("x" * (MAX_ID + 1))) is None
    assert _clean(SpaceInfo("x", receiver=None)) is None  # type: ignore[arg-type]
    assert _clean(SpaceInfo("x" * MAX_ID)) is not None


def test_text_is_cut_and_non_text_dropped() -> None:
    info = _clean(SpaceInfo("ws", name="n" * (MAX_TEXT + 5), topic=42, avatar_url=""))  # type: ignore[arg-type]
    assert info == SpaceInfo("ws", name="n" * MAX_TEXT, topic=None, avatar_url=None)


def test_a_clean_container_is_kept_as_given() -> None:
    given = SpaceInfo("ws", "Acme", "all of Acme", "mxc://example.org/a", "login-1")
    assert _clean(given) == given
