"""The typed config view (settings.py): one default per key, agreeing with example-config.yaml."""

from __future__ import annotations

from pathlib import Path

from bridgekit.config import Config
from bridgekit.settings import Settings, default_of, settings_of

EXAMPLE = Path(__file__).resolve().parents[2] / "example-config.yaml"


def test_missing_keys_take_their_default_and_values_get_their_type() -> None:
    s = settings_of({"bridge": {"merge_hold": 1, "relay": {"enabled": False}}, "media": None})
    assert s.bridge.merge_hold == 1.0 and isinstance(s.bridge.merge_hold, float)
    assert s.bridge.relay.enabled is False
    assert s.bridge.relay.format == "<{displayname}> {message}"
    assert s.media == Settings().media
    assert s.bridge.alias_rooms.per_minute == 10


def test_a_value_of_the_wrong_type_is_kept_for_validation_to_name() -> None:
    assert settings_of({"bridge": {"merge_hold": "soon"}}).bridge.merge_hold == "soon"


def test_setting_a_key_refreshes_the_typed_view() -> None:
    config = Config.from_dict({"bridge": {"command_prefix": "!"}})
    assert config.settings.bridge.command_prefix == "!"
    config.set("bridge.command_prefix", "?")
    assert config.settings.bridge.command_prefix == "?"


def test_the_example_config_states_the_defaults() -> None:
    """Every runtime key example-config.yaml sets (outside networks, tokens and the places an
    admin must edit) has the value settings.py gives it when it is left out."""
    config = Config.load(EXAMPLE)
    mismatched = []
    for section in ("bridge", "media", "metrics", "logging", "database", "encryption"):
        for key, value in _leaves(config.get(section) or {}, section):
            default = default_of(key)
            if isinstance(default, tuple):
                value = tuple(value)
            if default != value:
                mismatched.append((key, value, default))
    assert mismatched == []


def _leaves(node, prefix):
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}.{k}")
        else:
            yield f"{prefix}.{k}", v
