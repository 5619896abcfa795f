"""Which Matrix power-level changes reach the network: only users whose level moved."""

from __future__ import annotations

from bridgekit.portal.matrix_content import power_level_changes

BOT = "@bot:example.org"


def pl_event(users: dict, prev_users: dict | None, **extra) -> dict:
    evt: dict = {"type": "m.room.power_levels", "state_key": "", "content": {"users": users}}
    evt["content"].update(extra)
    if prev_users is not None:
        evt["unsigned"] = {"prev_content": {"users": prev_users}}
    return evt


def test_only_changed_users_are_reported() -> None:
    evt = pl_event({"@a:x": 100, "@b:x": 50, "@c:x": 0}, {"@a:x": 100, "@b:x": 0})
    assert power_level_changes(evt, BOT) == {"@b:x": 50}


def test_a_user_removed_from_the_map_falls_to_the_default() -> None:
    evt = pl_event({"@a:x": 100}, {"@a:x": 100, "@b:x": 50}, users_default=0)
    assert power_level_changes(evt, BOT) == {"@b:x": 0}


def test_the_bridge_bot_is_never_reported() -> None:
    evt = pl_event({BOT: 100, "@b:x": 50}, {})
    assert power_level_changes(evt, BOT) == {"@b:x": 50}


def test_junk_levels_count_as_the_default_and_never_crash() -> None:
    evt = pl_event({"@a:x": "100", "@b:x": True, 5: 50}, None)
    assert power_level_changes(evt, BOT) == {}
    assert power_level_changes({"content": None, "unsigned": "x"}, BOT) == {}
