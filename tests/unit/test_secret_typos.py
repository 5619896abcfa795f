"""Which command lines are near misses of a secret command (secret_typos)."""

from __future__ import annotations

import pytest

from bridgekit.commands.processor import _builtin_commands
from bridgekit.commands.secret_typos import edit_distance, mistyped_secret
from bridgekit.contract.commands import Command


async def _noop(ce) -> None:
    return None


def _irc_secret(args: list[str]) -> bool:
    sub = args[0].lower() if args else ""
    return sub == "storepass" or (sub == "join" and len(args) > 2)


COMMANDS = {
    c.name: c
    for c in [
        *_builtin_commands(),
        Command("irc", _noop, "", secret=_irc_secret, secret_subcommands=("storepass", "join")),
    ]
}


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [("irc", "ric", 1), ("storepass", "storepas", 1), ("storepass", "stroepsas", 2), ("", "ab", 2)],
)
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d


@pytest.mark.parametrize(
    ("line", "guess"),
    [
        ("irc storepas pw", "irc storepass"),
        ("irc stroepass pw", "irc storepass"),
        ("irc StorePas pw", "irc storepass"),
        ("ric storepass pw", "irc storepass"),
        ("ric storpass pw", "irc storepass"),
        ("irc jion #chan key", "irc join"),
        ("login-matrx syt_token", "login-matrix"),
        ("logn-matrix syt_token", "login-matrix"),
        # a space for the hyphen: `login` is a real command, run with the token as its flow
        ("login matrix syt_token", "login-matrix"),
        ("login matrx syt_token", "login-matrix"),
        ("Login Matrix syt_token", "login-matrix"),
        ("login matrix", None),
        # not secret, or the real thing (handled as such), or nothing to hide
        ("irc storepass pw", None),
        ("irc jion #chan", None),
        ("irc whois bob", None),
        ("irc storepas", "irc storepass"),  # the password may be the typo's own argument
        ("login-matrx", None),
        ("login-matrix tok", None),
        ("logout-matrix", None),
        ("login fake", None),
        ("lgoin fake", None),
        ("pong x", None),
        ("irc nick storepas", None),
    ],
)
def test_mistyped_secret(line: str, guess: str | None) -> None:
    name, *args = line.split()
    assert mistyped_secret(COMMANDS, name, args) == guess
