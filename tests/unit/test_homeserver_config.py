"""``generate-registration --homeserver-config``: the bridge added to Synapse's homeserver.yaml
(a copy of one Synapse generated), the admin's comments and keys kept, a second run a no-op."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import yaml

from bridgekit.cli import main
from bridgekit.homeserver_config import HomeserverConfigError, add_bridge

pytestmark = pytest.mark.engine_independent

SYNAPSE_GENERATED = Path(__file__).parent / "data" / "synapse-homeserver.yaml"
FEATURES = {"msc2409_to_device_messages_enabled": True, "msc3202_transaction_extensions": True}


def bridge_config(path: Path, *, encryption: bool) -> Path:
    enc = "encryption:\n  allow: true\n  pickle_key: generate\n" if encryption else ""
    path.write_text(
        "homeserver:\n  address: http://127.0.0.1:8008\n  domain: example.org\n"
        "appservice:\n  hostname: 127.0.0.1\n  port: 29300\n"
        "  address: http://127.0.0.1:29300\n  id: bridgekit\n"
        "  bot:\n    username: bridgekitbot\n"
        "database:\n  url: sqlite:///bridge.db\n"
        "permissions:\n  example.org: user\n"
        "networks:\n  fake:\n    enabled: true\n" + enc
    )
    return path


@pytest.fixture
def homeserver_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "homeserver.yaml"
    shutil.copy(SYNAPSE_GENERATED, path)
    path.chmod(0o640)  # it holds Synapse's secrets
    return path


def generate(tmp_path: Path, homeserver_yaml: Path, *, encryption: bool) -> int:
    cfg = bridge_config(tmp_path / "config.yaml", encryption=encryption)
    reg = tmp_path / "registration" / "bridgekit.yaml"
    return main(
        [
            "generate-registration",
            *("-c", str(cfg), "-r", str(reg)),
            *("--homeserver-config", str(homeserver_yaml)),
        ]
    )


def test_the_registration_and_the_encryption_features_are_added_and_the_rest_kept(
    tmp_path: Path, homeserver_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = yaml.safe_load(homeserver_yaml.read_text())
    assert generate(tmp_path, homeserver_yaml, encryption=True) == 0
    text = homeserver_yaml.read_text()
    after = yaml.safe_load(text)
    reg = (tmp_path / "registration" / "bridgekit.yaml").resolve()
    assert after.pop("app_service_config_files") == [str(reg)]
    assert after.pop("experimental_features") == FEATURES
    assert after == before  # every other key as it was
    # The keys were new: appended, the admin's lines kept byte for byte.
    assert text.startswith(SYNAPSE_GENERATED.read_text())
    # The admin's comments (Synapse's header, the vim modeline) and quoting stay.
    assert text.startswith("# As `python -m synapse.app.homeserver --generate-config`")
    assert "# For more information on how to configure Synapse" in text
    assert "# vim:ft=yaml" in text
    assert 'registration_shared_secret: "not-a-real-secret-1"' in text
    assert stat.S_IMODE(homeserver_yaml.stat().st_mode) == 0o640
    out = capsys.readouterr().out
    assert "msc2409_to_device_messages_enabled: true" in out and "Restart" in out

    # Again: nothing to add, the file is not rewritten.
    mtime = homeserver_yaml.stat().st_mtime_ns
    assert generate(tmp_path, homeserver_yaml, encryption=True) == 0
    assert homeserver_yaml.read_text() == text
    assert homeserver_yaml.stat().st_mtime_ns == mtime
    assert "not changed" in capsys.readouterr().out


def test_without_encryption_only_the_registration_is_added(
    tmp_path: Path, homeserver_yaml: Path
) -> None:
    assert generate(tmp_path, homeserver_yaml, encryption=False) == 0
    after = yaml.safe_load(homeserver_yaml.read_text())
    assert len(after["app_service_config_files"]) == 1
    assert "experimental_features" not in after


def test_existing_entries_are_kept_and_a_feature_turned_off_is_turned_on(
    tmp_path: Path, homeserver_yaml: Path
) -> None:
    reg = tmp_path / "reg.yaml"
    reg.write_text("id: x\n")
    with homeserver_yaml.open("a") as fh:
        fh.write(
            "\napp_service_config_files:\n"  # Synapse's file ends without a newline
            "  - /etc/synapse/other-bridge.yaml  # the admin's other bridge\n"
            "  - reg.yaml\n"  # relative to Synapse's directory: the same file
            "experimental_features:\n"
            "  msc3202_transaction_extensions: false\n"
            "  msc3266_enabled: true\n"
        )
    changes = add_bridge(homeserver_yaml, reg, encryption=True)
    assert changes == [
        "experimental_features: msc2409_to_device_messages_enabled: true",
        "experimental_features: msc3202_transaction_extensions: true",
    ]
    text = homeserver_yaml.read_text()
    after = yaml.safe_load(text)
    assert after["app_service_config_files"] == ["/etc/synapse/other-bridge.yaml", "reg.yaml"]
    assert after["experimental_features"] == {**FEATURES, "msc3266_enabled": True}
    assert "# the admin's other bridge" in text
    assert add_bridge(homeserver_yaml, reg, encryption=True) == []


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("- just\n- a list\n", "not a YAML mapping"),
        ("", "not a YAML mapping"),
        ("server_name: [unclosed\n", "not valid YAML"),
        ("app_service_config_files: /etc/synapse/one.yaml\n", "not a list of file names"),
        ("experimental_features: [msc2409]\n", "experimental_features is not a mapping"),
    ],
)
def test_a_file_that_is_not_what_synapse_reads_is_refused_and_left_alone(
    tmp_path: Path, content: str, why: str
) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text(content)
    with pytest.raises(HomeserverConfigError, match=why):
        add_bridge(path, tmp_path / "reg.yaml", encryption=True)
    assert path.read_text() == content


def test_the_command_says_why_it_did_not_change_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "homeserver.yaml"
    path.write_text("- not a mapping\n")
    assert generate(tmp_path, path, encryption=True) == 1
    err = capsys.readouterr().err
    assert "Homeserver config not changed" in err and "not a YAML mapping" in err
    missing = tmp_path / "nowhere" / "homeserver.yaml"
    assert generate(tmp_path, missing, encryption=True) == 1
    assert "cannot read" in capsys.readouterr().err
