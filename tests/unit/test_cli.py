"""The `bridgekit` command: exit codes, messages, and what it writes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridgekit.cli import EXIT_CONFIG, main, run_loop
from bridgekit.database.db import package_migrations, redact_url
from tests.unit.test_config import with_fake_network

#: What `bridgekit migrate` reports for a fully migrated database.
SCHEMA_LINE = (
    f"bridgekit schema version: {package_migrations('bridgekit.database.migrations')[-1].version}\n"
)

EXAMPLE = Path(__file__).resolve().parents[2] / "example-config.yaml"
#: The console script pip installed beside the interpreter running the tests (any venv).
BRIDGEKIT = Path(sys.executable).parent / "bridgekit"
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding example-config.yaml with the test network, and the cwd of the test."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("BRIDGEKIT_") and "__" in name:
            monkeypatch.delenv(name)
    text = with_fake_network(EXAMPLE.read_text(encoding="utf-8"))
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def generate(workdir: Path) -> dict[str, Any]:
    cfg, reg = workdir / "config.yaml", workdir / "reg.yaml"
    assert main(["generate-registration", "-c", str(cfg), "-r", str(reg)]) == 0
    return yaml.safe_load(reg.read_text(encoding="utf-8"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BRIDGEKIT), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def matches_any(entries: list[dict[str, Any]], value: str) -> bool:
    """Synapse's namespace semantics: ``re.match``."""
    return any(re.match(e["regex"], value) for e in entries)


# -- generate-registration -------------------------------------------------------------------


def test_generate_registration_writes_id_url_and_sender(workdir: Path) -> None:
    reg = generate(workdir)
    assert reg["id"] == "bridgekit"
    assert reg["url"] == "http://127.0.0.1:29300"
    assert reg["sender_localpart"] == "bridgekitbot"
    assert reg["rate_limited"] is False
    assert reg["receive_ephemeral"] is True


def test_generate_registration_makes_distinct_64_hex_tokens(workdir: Path) -> None:
    reg = generate(workdir)
    assert HEX64.fullmatch(reg["as_token"])
    assert HEX64.fullmatch(reg["hs_token"])
    assert reg["as_token"] != reg["hs_token"]


def test_generate_registration_user_namespace_is_exclusive_for_bot_and_ghosts(
    workdir: Path,
) -> None:
    users = generate(workdir)["namespaces"]["users"]
    assert all(e["exclusive"] is True for e in users)
    assert matches_any(users, "@bridgekitbot:example.org")
    assert matches_any(users, "@_fake_alice:example.org")
    assert not matches_any(users, "@alice:example.org")


def test_generate_registration_alias_namespace_matches_fake_portals(workdir: Path) -> None:
    aliases = generate(workdir)["namespaces"]["aliases"]
    assert all(e["exclusive"] is True for e in aliases)
    assert matches_any(aliases, "#_fake_general:example.org")
    assert not matches_any(aliases, "#general:example.org")


def test_generate_registration_writes_tokens_into_config_keeping_comments_and_order(
    workdir: Path,
) -> None:
    original = (workdir / "config.yaml").read_text(encoding="utf-8")
    reg = generate(workdir)
    expected = original.replace("  as_token: generate\n", f"  as_token: {reg['as_token']}\n")
    expected = expected.replace("  hs_token: generate\n", f"  hs_token: {reg['hs_token']}\n")
    assert expected != original
    assert (workdir / "config.yaml").read_text(encoding="utf-8") == expected


def test_generate_registration_again_keeps_the_same_tokens(workdir: Path) -> None:
    first = generate(workdir)
    config_after_first = (workdir / "config.yaml").read_text(encoding="utf-8")
    second = generate(workdir)
    assert (second["as_token"], second["hs_token"]) == (first["as_token"], first["hs_token"])
    assert (workdir / "config.yaml").read_text(encoding="utf-8") == config_after_first


def test_generate_registration_with_regenerate_makes_new_tokens(workdir: Path) -> None:
    first = generate(workdir)
    cfg, reg = workdir / "config.yaml", workdir / "reg.yaml"
    assert main(["generate-registration", "-c", str(cfg), "-r", str(reg), "--regenerate"]) == 0
    second = yaml.safe_load(reg.read_text(encoding="utf-8"))
    assert second["as_token"] != first["as_token"]
    assert second["hs_token"] != first["hs_token"]
    assert f"as_token: {second['as_token']}" in cfg.read_text(encoding="utf-8")


def test_generate_registration_refuses_an_otherwise_bad_config(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("port: 29300", "port: 0"))
    code = main(["generate-registration", "-c", str(cfg), "-r", str(workdir / "reg.yaml")])
    assert code == EXIT_CONFIG
    assert not (workdir / "reg.yaml").exists()
    assert "appservice.port" in capsys.readouterr().err


def test_generate_registration_as_a_command_exits_zero(workdir: Path) -> None:
    result = run("generate-registration", "-c", "config.yaml", "-r", "reg.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    reg = yaml.safe_load((workdir / "reg.yaml").read_text(encoding="utf-8"))
    assert f"as_token: {reg['as_token']}" in (workdir / "config.yaml").read_text(encoding="utf-8")


# -- check-config ----------------------------------------------------------------------------


def break_config(workdir: Path) -> tuple[Path, dict[str, int]]:
    """Tokens set, then three bad values; returns the path and key -> line."""
    generate(workdir)
    cfg = workdir / "config.yaml"
    lines = cfg.read_text(encoding="utf-8").split("\n")
    edits = {
        "  port: 29300": ("appservice.port", "  port: 99999"),
        "  level: INFO": ("logging.level", "  level: LOUD"),
        "    send_delay: 0": ("networks.fake.send_delay", "    send_delay: -1"),
    }
    where: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line in edits:
            key, new = edits[line]
            lines[i] = new
            where[key] = i + 1
    assert len(where) == 3
    cfg.write_text("\n".join(lines), encoding="utf-8")
    return cfg, where


def test_check_config_accepts_a_generated_config(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(workdir)
    capsys.readouterr()
    assert main(["check-config", "-c", "config.yaml"]) == 0
    assert capsys.readouterr().out == "config.yaml: OK\n"


def test_check_config_prints_one_line_per_problem_with_file_line_and_key(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, where = break_config(workdir)
    capsys.readouterr()
    assert main(["check-config", "-c", str(cfg)]) == EXIT_CONFIG
    err_lines = capsys.readouterr().err.splitlines()
    assert err_lines[0] == "Configuration problems:"
    problem_lines = err_lines[1:]
    assert len(problem_lines) == 3
    for key, line in where.items():
        [hit] = [p for p in problem_lines if p.strip().startswith(f"{cfg}:{line}: {key}: ")]
        assert hit


def test_check_config_without_tokens_says_to_run_generate_registration(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "-c", "config.yaml"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "appservice.as_token" in err
    assert "bridgekit generate-registration" in err


def test_check_config_as_a_command_exits_2_without_a_traceback(workdir: Path) -> None:
    cfg, where = break_config(workdir)
    result = run("check-config", "-c", str(cfg), cwd=workdir)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    for key, line in where.items():
        assert f"{cfg}:{line}: {key}: " in result.stderr


def test_invalid_yaml_exits_2_with_the_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "config.yaml").write_text("a: 1\n  b: 2\n", encoding="utf-8")
    assert main(["check-config", "-c", "config.yaml"]) == EXIT_CONFIG
    err = capsys.readouterr().err.splitlines()
    assert err[1].strip().startswith("config.yaml:2: config: not valid YAML")
    assert len(err) == 2


# -- missing config --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["check-config", "generate-registration", "migrate", "run"])
def test_missing_config_exits_2_with_the_copy_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main([command, "-c", str(missing)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"cp example-config.yaml {missing}" in err


def test_config_path_that_is_a_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "-c", str(tmp_path)]) == EXIT_CONFIG
    assert "cannot read" in capsys.readouterr().err


def test_missing_config_as_a_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    result = run("check-config", "-c", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "cp example-config.yaml nope.yaml" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


# -- migrate ---------------------------------------------------------------------------------


def test_migrate_creates_a_fresh_sqlite_database_at_the_latest_version(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(workdir)
    capsys.readouterr()
    assert main(["migrate", "-c", "config.yaml"]) == 0
    assert capsys.readouterr().out == SCHEMA_LINE
    # sqlite:///bridgekit.db is relative to the working directory.
    assert (workdir / "bridgekit.db").is_file()


def test_migrate_twice_is_idempotent(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(workdir)
    assert main(["migrate", "-c", "config.yaml"]) == 0
    capsys.readouterr()
    assert main(["migrate", "-c", "config.yaml"]) == 0
    assert capsys.readouterr().out == SCHEMA_LINE


def test_migrate_uses_an_absolute_sqlite_path(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(workdir)
    elsewhere = tmp_path_factory.mktemp("db") / "abs.db"
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "url: sqlite:///bridgekit.db", f"url: sqlite:///{elsewhere}"
        ),
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["migrate", "-c", "config.yaml"]) == 0
    assert capsys.readouterr().out == SCHEMA_LINE
    assert elsewhere.is_file()
    assert not (workdir / "bridgekit.db").exists()


def test_migrate_refuses_a_database_from_a_newer_bridgekit_without_a_traceback(
    workdir: Path,
) -> None:
    import sqlite3

    generate(workdir)
    with sqlite3.connect(workdir / "bridgekit.db") as conn:
        conn.execute("CREATE TABLE bridgekit_version (version INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO bridgekit_version (version) VALUES (99)")
    conn.close()
    result = run("migrate", "-c", "config.yaml", cwd=workdir)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "v99" in result.stderr
    assert "upgrade bridgekit" in result.stderr


def test_migrate_as_a_command_prints_the_version(workdir: Path) -> None:
    generate(workdir)
    result = run("migrate", "-c", "config.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCHEMA_LINE


@pytest.mark.parametrize("command", ["run", "migrate"])
def test_a_database_that_cannot_be_opened_is_one_line_without_the_password(
    workdir: Path, command: str
) -> None:
    """PostgreSQL not listening (a closed port), or an SQLite file in a missing directory:
    exit 1 with what failed and where to fix it, not a driver's stack trace."""
    generate(workdir)
    cfg = workdir / "config.yaml"
    text = cfg.read_text(encoding="utf-8")
    for url, reason in (
        # uvloop says "Connection refused", asyncio's loop "Connect call failed".
        ("postgres://bridge:s3cret@127.0.0.1:9/bridge", ("refused", "connect call failed")),
        (f"sqlite:///{workdir}/no/such/dir/bridgekit.db", ("unable to open",)),
    ):
        cfg.write_text(text.replace("url: sqlite:///bridgekit.db", f"url: {url}"), "utf-8")
        result = run(command, "-c", "config.yaml", cwd=workdir)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "Traceback" not in out
        assert "cannot open the database" in out and "(database.url)" in out
        assert any(r in out.lower() for r in reason), out
        assert "s3cret" not in out


def test_a_second_process_on_the_same_database_exits_until_the_first_is_gone(
    workdir: Path,
) -> None:
    """`run` and `migrate` refuse a database another bridge process holds; a kill -9 of that
    process frees it (the kernel drops its lock)."""
    generate(workdir)
    with socket.socket() as s:  # a free port, so that test runs can go side by side
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("29300", str(port)), "utf-8")
    first = subprocess.Popen(
        [str(BRIDGEKIT), "run", "-c", "config.yaml"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Up once its appservice listener answers (it keeps retrying the absent homeserver).
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first bridge did not come up"
            time.sleep(0.1)
        for command in ("run", "migrate"):
            result = run(command, "-c", "config.yaml", cwd=workdir)
            out = result.stdout + result.stderr
            assert result.returncode == 1, out
            assert "another bridgekit process is running" in out and "Traceback" not in out
    finally:
        first.kill()
        first.wait()
    result = run("migrate", "-c", "config.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgres://u:p%40ss@h:5432/d?sslmode=require") == (
        "postgres://u:***@h:5432/d?sslmode=require"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("sqlite:///var/lib/bridgekit.db") == "sqlite:///var/lib/bridgekit.db"


# -- arguments -------------------------------------------------------------------------------


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


# -- the event loop --------------------------------------------------------------------------


async def _loop_class() -> str:
    import asyncio

    return type(asyncio.get_running_loop()).__module__


def test_run_loop_uses_uvloop_when_installed_and_auto() -> None:
    pytest.importorskip("uvloop")
    assert run_loop(_loop_class(), "auto").startswith("uvloop")
    assert run_loop(_loop_class(), "uvloop").startswith("uvloop")


def test_run_loop_asyncio_uses_the_standard_library_loop() -> None:
    assert run_loop(_loop_class(), "asyncio").startswith("asyncio")


def test_run_loop_auto_without_uvloop_falls_back_and_uvloop_then_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert run_loop(_loop_class(), "auto").startswith("asyncio")
    coro = _loop_class()
    with pytest.raises(ImportError):
        run_loop(coro, "uvloop")
    coro.close()
