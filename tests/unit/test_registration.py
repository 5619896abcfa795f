"""The appservice registration: namespaces, tokens, and what is written back to config.yaml."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridgekit.bridge import discover_connectors
from bridgekit.config import Config
from bridgekit.registration import (
    build_registration,
    double_puppet_registration,
    generate,
    namespaces,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "example-config.yaml"


def base_config(**tokens: str) -> Config:
    return Config.from_dict(
        {
            "homeserver": {"address": "http://127.0.0.1:8008", "domain": "example.org"},
            "appservice": {
                "address": "http://127.0.0.1:29300",
                "id": "bridgekit",
                "bot": {"username": "bridgekitbot"},
                **tokens,
            },
            "networks": {"fake": {"enabled": True}},
        }
    )


def matches_any(regexes: list[str], value: str) -> bool:
    """Synapse's namespace semantics: ``re.match`` (anchored at the start only)."""
    return any(re.match(r, value) for r in regexes)


# -- namespaces ------------------------------------------------------------------------------


def test_user_namespace_claims_the_bot_and_the_fake_ghosts() -> None:
    users, _ = namespaces(base_config(), discover_connectors())
    assert matches_any(users, "@bridgekitbot:example.org")
    assert matches_any(users, "@_fake_alice:example.org")


def test_user_namespace_does_not_claim_ordinary_users() -> None:
    users, _ = namespaces(base_config(), discover_connectors())
    assert not matches_any(users, "@alice:example.org")
    assert not matches_any(users, "@bridgekitbot2:example.org")


def test_user_namespace_does_not_claim_users_on_other_servers() -> None:
    users, _ = namespaces(base_config(), discover_connectors())
    assert not matches_any(users, "@_fake_alice:example.org.evil.com")
    assert not matches_any(users, "@bridgekitbot:example.organic.net")
    assert not matches_any(users, "@_fake_alice:exampleXorg")


def test_alias_namespace_claims_fake_portal_aliases_only() -> None:
    _, aliases = namespaces(base_config(), discover_connectors())
    assert matches_any(aliases, "#_fake_general:example.org")
    assert not matches_any(aliases, "#general:example.org")
    assert not matches_any(aliases, "#_fake_general:example.org.evil.com")


def test_disabled_network_contributes_no_namespaces() -> None:
    config = base_config()
    config.set("networks.fake.enabled", False)
    users, aliases = namespaces(config, discover_connectors())
    assert not matches_any(users, "@_fake_alice:example.org")
    assert aliases == []


# -- tokens ----------------------------------------------------------------------------------


def test_generate_creates_distinct_64_hex_tokens_for_placeholders(tmp_path: Path) -> None:
    config = base_config(as_token="generate", hs_token="generate")
    reg = generate(config, discover_connectors(), tmp_path / "reg.yaml")
    assert re.fullmatch(r"[0-9a-f]{64}", reg["as_token"])
    assert re.fullmatch(r"[0-9a-f]{64}", reg["hs_token"])
    assert reg["as_token"] != reg["hs_token"]
    assert config["appservice.as_token"] == reg["as_token"]
    assert config["appservice.hs_token"] == reg["hs_token"]


def test_generate_keeps_tokens_that_are_already_set(tmp_path: Path) -> None:
    as_token, hs_token = "1" * 64, "2" * 64
    config = base_config(as_token=as_token, hs_token=hs_token)
    reg = generate(config, discover_connectors(), tmp_path / "reg.yaml")
    assert (reg["as_token"], reg["hs_token"]) == (as_token, hs_token)


def test_generate_replaces_tokens_that_are_too_short(tmp_path: Path) -> None:
    config = base_config(as_token="short", hs_token="2" * 64)
    reg = generate(config, discover_connectors(), tmp_path / "reg.yaml")
    assert re.fullmatch(r"[0-9a-f]{64}", reg["as_token"])
    assert reg["hs_token"] == "2" * 64


def test_generate_makes_identical_tokens_distinct(tmp_path: Path) -> None:
    config = base_config(as_token="3" * 64, hs_token="3" * 64)
    reg = generate(config, discover_connectors(), tmp_path / "reg.yaml")
    assert reg["as_token"] == "3" * 64
    assert reg["hs_token"] != reg["as_token"]


def test_regenerate_replaces_tokens_that_are_set(tmp_path: Path) -> None:
    config = base_config(as_token="1" * 64, hs_token="2" * 64)
    reg = generate(config, discover_connectors(), tmp_path / "reg.yaml", regenerate_tokens=True)
    assert reg["as_token"] != "1" * 64
    assert reg["hs_token"] != "2" * 64


# -- the registration file -------------------------------------------------------------------


def test_registration_file_is_private_and_holds_what_was_returned(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "reg.yaml"
    reg = generate(base_config(), discover_connectors(), out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == reg


def test_a_world_readable_registration_file_is_made_private_when_rewritten(
    tmp_path: Path,
) -> None:
    out = tmp_path / "reg.yaml"
    out.write_text("old")
    out.chmod(0o644)
    generate(base_config(), discover_connectors(), out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_registration_has_the_fields_the_homeserver_needs() -> None:
    config = base_config(as_token="1" * 64, hs_token="2" * 64)
    reg: dict[str, Any] = build_registration(config, discover_connectors())
    assert reg["id"] == "bridgekit"
    assert reg["url"] == "http://127.0.0.1:29300"
    assert reg["sender_localpart"] == "bridgekitbot"
    assert reg["rate_limited"] is False
    assert reg["receive_ephemeral"] is True
    assert reg["protocols"] == ["fake"]
    assert reg["namespaces"]["rooms"] == []
    for ns in ("users", "aliases"):
        assert reg["namespaces"][ns], ns
        assert all(entry["exclusive"] is True for entry in reg["namespaces"][ns])


def test_generate_without_a_config_file_writes_only_the_registration(tmp_path: Path) -> None:
    generate(base_config(), discover_connectors(), tmp_path / "reg.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reg.yaml"]


def test_generate_does_not_write_environment_overrides_into_the_config_file(
    tmp_path: Path,
) -> None:
    original = EXAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(original, encoding="utf-8")
    config = Config.load(
        path,
        env={
            "BRIDGEKIT_APPSERVICE__PORT": "1234",
            "BRIDGEKIT_DATABASE__URL": "postgres://bridge:s3cret@db/bridgekit",
        },
    )
    reg = generate(config, discover_connectors(), tmp_path / "reg.yaml")
    saved = path.read_text(encoding="utf-8")
    assert "s3cret" not in saved
    assert saved == original.replace("as_token: generate", f"as_token: {reg['as_token']}").replace(
        "hs_token: generate", f"hs_token: {reg['hs_token']}"
    )


# -- double puppeting ------------------------------------------------------------------------


def test_double_puppet_registration_claims_all_local_users_non_exclusively() -> None:
    reg = double_puppet_registration("example.org", "t" * 64)
    [ns] = reg["namespaces"]["users"]
    assert reg["as_token"] == "t" * 64
    assert ns["exclusive"] is False
    assert re.match(ns["regex"], "@anyone:example.org")
    assert reg["url"] is None


@pytest.mark.parametrize("token", [None, ""])
def test_double_puppet_registration_makes_a_token_when_none_is_given(token: str | None) -> None:
    reg = double_puppet_registration("example.org", token)
    assert re.fullmatch(r"[0-9a-f]{64}", reg["as_token"])
    assert reg["as_token"] != reg["hs_token"]
