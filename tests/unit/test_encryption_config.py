"""The ``encryption`` section: validated, and what it adds to the registration."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import bridgekit.crypto
from bridgekit.bridge import discover_connectors
from bridgekit.config import Config
from bridgekit.registration import build_registration, generate

pytestmark = pytest.mark.engine_independent


def config(**encryption: object) -> Config:
    return Config.from_dict(
        {
            "homeserver": {"address": "http://127.0.0.1:8008", "domain": "example.org"},
            "appservice": {
                "hostname": "127.0.0.1",
                "port": 29300,
                "address": "http://127.0.0.1:29300",
                "id": "bridgekit",
                "bot": {"username": "bridgekitbot"},
                "as_token": "a" * 64,
                "hs_token": "b" * 64,
            },
            "database": {"url": "sqlite:///x.db"},
            "permissions": {"*": "user"},
            "networks": {"fake": {"enabled": True}},
            "encryption": encryption,
        }
    )


def problems(cfg: Config) -> dict[str, str]:
    return {p.key: p.why for p in cfg.validate(discover_connectors())}


def test_allow_without_the_extra_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(bridgekit.crypto, "missing_extra", lambda: "python-olm")
    found = problems(config(allow=True, pickle_key="k" * 32))
    assert "python-olm" in found["encryption.allow"]
    assert "pip install 'bridgekit[e2ee]'" in found["encryption.allow"]


def test_allow_with_the_extra_and_a_pickle_key_is_valid() -> None:
    assert problems(config(allow=True, default=True, pickle_key="k" * 32)) == {}


def test_allow_needs_a_pickle_key() -> None:
    assert "generate-registration" in problems(config(allow=True))["encryption.pickle_key"]


def test_default_and_require_need_allow_and_sharing_is_checked() -> None:
    found = problems(config(default=True, require=True, allow_key_sharing="everyone"))
    assert set(found) == {
        "encryption.default",
        "encryption.require",
        "encryption.allow_key_sharing",
    }


def test_off_by_default_and_the_registration_unchanged() -> None:
    cfg = config()
    assert cfg.settings.encryption.allow is False and problems(cfg) == {}
    reg = build_registration(cfg, discover_connectors())
    assert "org.matrix.msc3202" not in reg and "io.element.msc4190" not in reg


def test_registration_asks_for_msc3202_and_msc4190_and_ephemeral() -> None:
    reg = build_registration(config(allow=True, pickle_key="k" * 32), discover_connectors())
    assert reg["org.matrix.msc3202"] is True
    assert reg["io.element.msc4190"] is True
    assert reg["receive_ephemeral"] is True
    # Synapse cannot /sync as the sender: the bot is a user of the namespace instead.
    assert reg["sender_localpart"] == "bridgekitbot-as"
    assert any(r["regex"] == r"^@bridgekitbot:example\.org$" for r in reg["namespaces"]["users"])


def test_generate_makes_a_pickle_key_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    cfg = config(allow=True, pickle_key="generate")
    cfg.save(path)
    cfg = Config.load(path)
    generate(cfg, discover_connectors(), tmp_path / "reg.yaml")
    key = Config.load(path).get("encryption.pickle_key")
    assert isinstance(key, str) and len(key) == 64
    reg = yaml.safe_load((tmp_path / "reg.yaml").read_text())
    assert reg["org.matrix.msc3202"] is True
    # Never replaced, not even with new tokens: it encrypts the keys in the database.
    generate(
        Config.load(path), discover_connectors(), tmp_path / "reg.yaml", regenerate_tokens=True
    )
    assert Config.load(path).get("encryption.pickle_key") == key
