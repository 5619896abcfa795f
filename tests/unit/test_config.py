"""config.yaml: loading, validation (every problem, with its dotted key and line), env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridgekit.bridge import discover_connectors
from bridgekit.config import Config, ConfigError, Problem
from bridgekit.registration import build_registration

EXAMPLE = Path(__file__).resolve().parents[2] / "example-config.yaml"
AS_TOKEN = "a1" * 32
HS_TOKEN = "b2" * 32
FAKE_NETWORK = "  fake:\n    enabled: true\n    send_delay: 0\n"


def replace_line(text: str, old: str, new: str) -> str:
    """Replace the one line of ``text`` that is exactly ``old`` (indentation included)."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line == old]
    assert len(hits) == 1, f"expected exactly one line {old!r}, found {len(hits)}"
    lines[hits[0]] = new
    return "\n".join(lines)


def line_number(text: str, exact_line: str) -> int:
    """1-based number of the one line of ``text`` that is exactly ``exact_line``."""
    hits = [i + 1 for i, line in enumerate(text.split("\n")) if line == exact_line]
    assert len(hits) == 1, f"expected exactly one line {exact_line!r}, found {len(hits)}"
    return hits[0]


def with_fake_network(text: str) -> str:
    """``text`` with the in-memory test network enabled first (the example ships without it)."""
    return text.replace("\nnetworks:\n", "\nnetworks:\n" + FAKE_NETWORK, 1)


def example_text() -> str:
    """The shipped example config with tokens filled in, as generate-registration would."""
    text = with_fake_network(EXAMPLE.read_text(encoding="utf-8"))
    text = replace_line(text, "  as_token: generate", f"  as_token: {AS_TOKEN}")
    return replace_line(text, "  hs_token: generate", f"  hs_token: {HS_TOKEN}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    return Config.load(path, env={}).validate(discover_connectors())


# -- the example config ----------------------------------------------------------------------


def test_example_config_with_tokens_has_no_problems(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, example_text())) == []


def test_example_config_values_are_read_with_their_yaml_types(tmp_path: Path) -> None:
    config = Config.load(write(tmp_path, example_text()), env={})
    assert config["appservice.port"] == 29300
    assert config["homeserver.domain"] == "example.org"
    assert config.get("metrics.enabled") is False
    assert config.bot_mxid == "@bridgekitbot:example.org"
    assert config.get("no.such.key", "dflt") == "dflt"


def test_example_config_without_generated_tokens_reports_both_token_keys(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [
        ("appservice.as_token", line_number(text, "  as_token: generate")),
        ("appservice.hs_token", line_number(text, "  hs_token: generate")),
    ]
    assert all("generate-registration" in p.why for p in problems)


# -- one bad value -> one problem, with the dotted key and the line ------------------------

BAD_VALUES = [
    # (dotted key, line as shipped, bad replacement line)
    ("homeserver.address", "  address: http://127.0.0.1:8008", "  address: ftp://127.0.0.1"),
    ("homeserver.domain", "  domain: example.org", "  domain: not a domain!"),
    ("appservice.port", "  port: 29300", "  port: 70000"),
    ("appservice.port", "  port: 29300", "  port: twelve"),
    ("appservice.port", "  port: 29300", "  port: true"),
    ("appservice.address", "  address: http://127.0.0.1:29300", "  address: 127.0.0.1:29300"),
    ("appservice.id", "  id: bridgekit", "  id: bridge kit"),
    ("appservice.bot.username", "    username: bridgekitbot", "    username: Bridge Bot"),
    ("appservice.as_token", f"  as_token: {AS_TOKEN}", "  as_token: generate"),
    ("appservice.hs_token", f"  hs_token: {HS_TOKEN}", f"  hs_token: {AS_TOKEN}"),
    ("appservice.max_body_size", "  max_body_size: 10485760", "  max_body_size: 100"),
    ("database.url", "  url: sqlite:///bridgekit.db", "  url: mysql://db/bridgekit"),
    ("permissions.*", '  "*": relay', '  "*": superuser'),
    ("permissions.example.org", "  example.org: user", "  example.org: root"),
    ("permissions.not a user", '  "@admin:example.org": admin', '  "not a user": admin'),
    ("logging.level", "  level: INFO", "  level: LOUD"),
    (
        "bridge.relay.format",
        '    format: "<{displayname}> {message}"',
        '    format: "<{displayname}>"',
    ),
    ("bridge.event_loop", "  event_loop: auto", "  event_loop: trio"),
    ("bridge.merge_hold", "  merge_hold: 0.25", "  merge_hold: -1"),
    ("bridge.merge_hold", "  merge_hold: 0.25", "  merge_hold: 60"),
    ("bridge.merge_hold", "  merge_hold: 0.25", "  merge_hold: yes"),
    ("media.allow", "  allow: []", '  allow: ["10.0.0.0/8", "intranet"]'),
    ("media.allow", "  allow: []", '  allow: ["127.0.0.1:99999"]'),
    ("media.allow", "  allow: []", "  allow: 10.0.0.0/8"),
    ("media.max_size", "  max_size: 20971520", "  max_size: 10"),
    ("media.timeout", "  timeout: 30", "  timeout: 0"),
    ("media.timeout", "  timeout: 30", "  timeout: forever"),
    ("media.concurrency", "  concurrency: 8", "  concurrency: 0"),
    ("media.max_redirects", "  max_redirects: 5", "  max_redirects: -1"),
    ("media.port", "  # port: 29302", "  port: 29300  # the appservice's"),
    ("media.port", "  # port: 29302", "  port: 0"),
    ("media.hostname", "  # hostname: 0.0.0.0", "  hostname: 12"),
    (
        "media.public_address",
        "  # public_address: https://media.example.org",
        "  public_address: media.example.org",
    ),
    ("bridge.alias_rooms.per_minute", "    per_minute: 10", "    per_minute: -1"),
    ("bridge.alias_rooms.cleanup_after", "    cleanup_after: 600", "    cleanup_after: soon"),
    ("networks.fake.send_delay", "    send_delay: 0", "    send_delay: -1"),
    ("networks.fake.send_delay", "    send_delay: 0", "    send_delay: soon"),
]


@pytest.mark.parametrize(
    ("key", "old", "new"),
    BAD_VALUES,
    ids=[f"{k}={n.split(':', 1)[1].strip()}" for k, _, n in BAD_VALUES],
)
def test_bad_value_is_reported_with_its_dotted_key_and_line(
    tmp_path: Path, key: str, old: str, new: str
) -> None:
    text = replace_line(example_text(), old, new)
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [(key, line_number(text, new))]


def test_double_puppet_secret_without_as_token_prefix_is_reported_at_its_line(
    tmp_path: Path,
) -> None:
    text = replace_line(example_text(), "  secrets: {}", "  secrets:\n    example.org: hunter2")
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [
        ("double_puppet.secrets.example.org", line_number(text, "    example.org: hunter2"))
    ]


def test_metrics_port_is_validated_only_when_metrics_are_enabled(tmp_path: Path) -> None:
    disabled = replace_line(example_text(), "  port: 29301", "  port: 0")
    assert problems_of(write(tmp_path, disabled)) == []

    enabled = replace_line(disabled, "  enabled: false", "  enabled: true")
    problems = problems_of(write(tmp_path, enabled))
    assert [(p.key, p.line) for p in problems] == [
        ("metrics.port", line_number(enabled, "  port: 0"))
    ]


def test_missing_required_key_is_reported_as_required(tmp_path: Path) -> None:
    text = replace_line(example_text(), "  domain: example.org", "")
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.why) for p in problems] == [("homeserver.domain", "is required")]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = example_text()
    text = replace_line(text, "  port: 29300", "  port: 0")
    text = replace_line(text, "  url: sqlite:///bridgekit.db", "  url: nope")
    text = replace_line(text, "  level: INFO", "  level: CHATTY")
    text = replace_line(text, "    send_delay: 0", "    send_delay: -5")
    problems = problems_of(write(tmp_path, text))
    assert sorted((p.key, p.line) for p in problems) == sorted(
        [
            ("appservice.port", line_number(text, "  port: 0")),
            ("database.url", line_number(text, "  url: nope")),
            ("logging.level", line_number(text, "  level: CHATTY")),
            ("networks.fake.send_delay", line_number(text, "    send_delay: -5")),
        ]
    )


def test_check_raises_config_error_carrying_every_problem_and_the_path(tmp_path: Path) -> None:
    text = replace_line(example_text(), "  port: 29300", "  port: 0")
    text = replace_line(text, "  level: INFO", "  level: CHATTY")
    path = write(tmp_path, text)
    config = Config.load(path, env={})
    with pytest.raises(ConfigError) as info:
        config.check(discover_connectors())
    assert info.value.path == str(path)
    assert [p.key for p in info.value.problems] == ["appservice.port", "logging.level"]
    port_line = line_number(text, "  port: 0")
    assert f"{path}:{port_line}: appservice.port: " in str(info.value)


def test_problem_formats_as_path_line_key_and_reason() -> None:
    assert Problem("a.b", "is bad", 7).format("cfg.yaml") == "cfg.yaml:7: a.b: is bad"
    assert Problem("a.b", "is bad").format("cfg.yaml") == "cfg.yaml: a.b: is bad"
    assert Problem("a.b", "is bad", 7).format(None) == "a.b: is bad"


# -- networks --------------------------------------------------------------------------------


def test_unknown_network_section_is_reported_with_the_installed_connectors(tmp_path: Path) -> None:
    text = example_text() + "  nosuchnet:\n    enabled: true\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [
        ("networks.nosuchnet", line_number(text, "  nosuchnet:"))
    ]
    installed = problems[0].why.split("(installed: ", 1)[1].rstrip(")").split(", ")
    assert "fake" in installed and installed == sorted(installed)


def test_disabled_unknown_network_section_is_not_a_problem(tmp_path: Path) -> None:
    text = example_text() + "  nosuchnet:\n    enabled: false\n"
    assert problems_of(write(tmp_path, text)) == []


def test_networks_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    text = example_text().split("\nnetworks:\n")[0] + "\nnetworks: [fake]\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [
        ("networks", line_number(text, "networks: [fake]"))
    ]


def test_empty_network_section_enables_the_network_with_defaults(tmp_path: Path) -> None:
    text = example_text().split("\nnetworks:\n")[0] + "\nnetworks:\n  fake:\n"
    config = Config.load(write(tmp_path, text), env={})
    assert config.enabled_networks() == {"fake": {}}
    assert config.validate(discover_connectors()) == []


def test_network_section_that_is_not_a_mapping_is_reported(tmp_path: Path) -> None:
    text = example_text().split("\nnetworks:\n")[0] + "\nnetworks:\n  fake: yes please\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [
        ("networks.fake", line_number(text, "  fake: yes please"))
    ]


def test_network_sections_are_not_checked_without_connectors(tmp_path: Path) -> None:
    text = replace_line(example_text(), "    send_delay: 0", "    send_delay: -1")
    assert Config.load(write(tmp_path, text), env={}).validate() == []


# -- files that cannot be loaded -------------------------------------------------------------


def test_missing_file_tells_to_copy_the_example_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    with pytest.raises(ConfigError) as info:
        Config.load(path, env={})
    [problem] = info.value.problems
    assert f"cp example-config.yaml {path}" in problem.why


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("homeserver:\n  address: http://x\n  domain: [unclosed\nappservice:\n  port: 1\n", 4),
        ("a: 1\n  b: 2\nc: 3\n", 2),
        ("a: 1\nb: 2\n\tc: 3\n", 3),
    ],
    ids=["unclosed-flow-sequence", "bad-indentation", "tab"],
)
def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Config.load(path, env={})
    [problem] = info.value.problems
    assert problem.line == line
    assert problem.why.startswith("not valid YAML")
    assert info.value.path == str(path)


def test_invalid_yaml_problem_formats_as_a_single_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\n  b: 2\n")
    with pytest.raises(ConfigError) as info:
        Config.load(path, env={})
    [problem] = info.value.problems
    formatted = problem.format(info.value.path)
    assert "\n" not in formatted
    assert formatted.startswith(f"{path}:2: config: not valid YAML")


def test_config_path_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(tmp_path, env={})
    [problem] = info.value.problems
    assert problem.key == "config"
    assert "cannot read" in problem.why


def test_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"homeserver:\n  domain: caf\xe9.org\n")
    with pytest.raises(ConfigError) as info:
        Config.load(path, env={})
    assert [p.key for p in info.value.problems] == ["config"]
    assert info.value.path == str(path)


def test_top_level_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Config.load(write(tmp_path, "- a\n- b\n"), env={})
    assert [p.key for p in info.value.problems] == ["config"]


def test_empty_file_loads_and_reports_required_keys(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, ""))
    keys = {p.key for p in problems}
    assert {"homeserver.address", "homeserver.domain", "appservice.port", "database.url"} <= keys


# -- environment overrides -------------------------------------------------------------------


def test_env_override_replaces_a_value_with_its_yaml_type(tmp_path: Path) -> None:
    config = Config.load(
        write(tmp_path, example_text()), env={"BRIDGEKIT_APPSERVICE__PORT": "1234"}
    )
    assert config["appservice.port"] == 1234
    assert type(config["appservice.port"]) is int


def test_env_override_reaches_nested_keys_with_underscores_in_their_names(tmp_path: Path) -> None:
    config = Config.load(
        write(tmp_path, example_text()),
        env={
            "BRIDGEKIT_APPSERVICE__MAX_BODY_SIZE": "2048",
            "BRIDGEKIT_NETWORKS__FAKE__SEND_DELAY": "0.5",
            "BRIDGEKIT_METRICS__ENABLED": "true",
            "BRIDGEKIT_HOMESERVER__DOMAIN": "matrix.example.com",
        },
    )
    assert config["appservice.max_body_size"] == 2048
    assert config["networks.fake.send_delay"] == 0.5
    assert config["metrics.enabled"] is True
    assert config["homeserver.domain"] == "matrix.example.com"


def test_env_override_can_make_a_config_invalid(tmp_path: Path) -> None:
    config = Config.load(write(tmp_path, example_text()), env={"BRIDGEKIT_APPSERVICE__PORT": "0"})
    assert [p.key for p in config.validate(discover_connectors())] == ["appservice.port"]


def test_env_variables_without_prefix_or_level_separator_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, example_text())
    plain = Config.load(path, env={})
    config = Config.load(
        path,
        env={"BRIDGEKIT_TEST_DB": "postgres", "APPSERVICE__PORT": "1", "HOME": "/root"},
    )
    assert config.data == plain.data


def test_process_environment_is_used_when_no_env_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGEKIT_APPSERVICE__PORT", "4321")
    assert Config.load(write(tmp_path, example_text()))["appservice.port"] == 4321


# -- permissions -----------------------------------------------------------------------------


def perms_config(perms: dict[str, str]) -> Config:
    return Config.from_dict({"permissions": perms})


def test_exact_mxid_permission_beats_domain_and_wildcard() -> None:
    config = perms_config({"*": "relay", "example.org": "user", "@boss:example.org": "admin"})
    assert config.permission_for("@boss:example.org") == "admin"


def test_domain_permission_beats_wildcard() -> None:
    config = perms_config({"*": "relay", "example.org": "user", "@boss:example.org": "admin"})
    assert config.permission_for("@alice:example.org") == "user"


def test_wildcard_permission_applies_to_other_servers() -> None:
    config = perms_config({"*": "relay", "example.org": "user"})
    assert config.permission_for("@mallory:evil.example") == "relay"


def test_domain_permission_does_not_match_subdomains_or_lookalikes() -> None:
    config = perms_config({"example.org": "user"})
    assert config.permission_for("@a:sub.example.org") is None
    assert config.permission_for("@a:example.org.evil") is None


def test_unlisted_user_without_wildcard_has_no_permission() -> None:
    config = perms_config({"example.org": "user", "@boss:example.org": "admin"})
    assert config.permission_for("@alice:other.org") is None


def test_get_answers_from_its_cache_until_set_changes_a_value() -> None:
    config = Config.from_dict({"bridge": {"relay": {"enabled": True}}})
    assert config.get("bridge.relay.enabled") is True
    assert config.get("bridge.command_prefix", "!") == "!"
    assert config.get("bridge.missing", []) == []  # an unhashable default is not cached
    config.set("bridge.relay.enabled", False)
    config.set("bridge.command_prefix", "!bk")
    assert config.get("bridge.relay.enabled") is False
    assert config.get("bridge.command_prefix", "!") == "!bk"
    assert config["bridge.relay"] == {"enabled": False}


def test_no_permissions_section_means_no_permission() -> None:
    assert Config.from_dict({}).permission_for("@alice:example.org") is None


# -- saving ----------------------------------------------------------------------------------


def test_save_after_set_changes_only_that_line(tmp_path: Path) -> None:
    text = example_text()
    path = write(tmp_path, text)
    config = Config.load(path, env={})
    config.set("appservice.port", 29999)
    config.save()
    assert path.read_text(encoding="utf-8") == replace_line(text, "  port: 29300", "  port: 29999")
    assert not (tmp_path / "config.yaml.tmp").exists()


# -- what the example enables ------------------------------------------------------------------


def test_the_example_config_enables_no_test_only_connector(tmp_path: Path) -> None:
    """A production config copied from the example must not claim a test network's ghost
    and alias namespaces (``@_fake_*``) on the homeserver."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = replace_line(text, "  as_token: generate", f"  as_token: {AS_TOKEN}")
    text = replace_line(text, "  hs_token: generate", f"  hs_token: {HS_TOKEN}")
    config = Config.load(write(tmp_path, text), env={})
    installed = discover_connectors()
    for name in config.enabled_networks():
        module = installed[name].__module__
        assert not module.startswith("bridgekit.testing"), f"{name} is a test connector"
    reg = build_registration(config, installed)
    regexes = [e["regex"] for ns in ("users", "aliases") for e in reg["namespaces"][ns]]
    assert not any("_fake_" in r for r in regexes), regexes


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        # YAML 1.2 reads `no` as a string, which the typed view made True: spaces turned on.
        ("bridge.personal_spaces", "  personal_spaces: false", "  personal_spaces: no"),
        ("bridge.edit_fallback", "  edit_fallback: true", '  edit_fallback: "false"'),
        # A string where seconds are meant crashed the first disconnect's notice timer.
        ("bridge.state_notice_delay", "  state_notice_delay: 60", "  state_notice_delay: 1m"),
    ],
)
def test_wrong_typed_setting_is_reported_not_read_as_something_else(
    tmp_path: Path, key: str, old: str, new: str
) -> None:
    text = replace_line(example_text(), old, new)
    problems = problems_of(write(tmp_path, text))
    assert [(p.key, p.line) for p in problems] == [(key, line_number(text, new))]
