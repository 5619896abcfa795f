"""Mistyped secret commands: ``irc storepas hunter2`` carries a password as surely as the
command it misspells, but is no command, so nothing removed it from the room's history.

A command line whose command name (or, for a command that declares
``Command.secret_subcommands``, whose subcommand) is a near miss of a secret use is treated
like that use: removed, not run, and the user told what they probably meant.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..contract.commands import Command


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance with adjacent transpositions (``ric`` is one from ``irc``)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            best = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, prev2[j - 2] + 1)
            row.append(best)
        prev2, prev = prev, row
    return prev[-1]


def is_near_miss(word: str, target: str) -> bool:
    """``word`` is a typo of ``target``: one edit away, two for names longer than four
    letters (two edits turn most short words into one another)."""
    if word == target:
        return False
    allowed = 1 if len(target) <= 4 else 2
    return abs(len(word) - len(target)) <= allowed and edit_distance(word, target) <= allowed


def _sub_guess(cmd: Command, args: list[str]) -> str | None:
    if not args:
        return None
    word = args[0].lower()
    for sub in cmd.secret_subcommands:
        if is_near_miss(word, sub) and cmd.carries_secret([sub, *args[1:]]):
            return sub
    return None


def _joined_guess(commands: Mapping[str, Command], name: str, args: list[str]) -> str | None:
    """``login matrix <token>``: a hyphenated secret command typed with a space (its first
    word may be a real command, which would run with the secret as an argument)."""
    if len(args) < 2:
        return None
    joined = f"{name}-{args[0].lower()}"
    for known, cmd in commands.items():
        if (known == joined or is_near_miss(joined, known)) and cmd.carries_secret(args[1:]):
            return known
    return None


def mistyped_secret(commands: Mapping[str, Command], name: str, args: list[str]) -> str | None:
    """The secret command line ``name args`` probably meant (``"irc storepass"``), or None
    if it is a real command's use or no near miss of a secret one. Needs an argument: a
    command name alone holds no secret."""
    name = name.lower()
    cmd = commands.get(name)
    if cmd is not None:
        if cmd.carries_secret(args):
            return None  # the real thing: handled as such
        sub = _sub_guess(cmd, args)
        return f"{name} {sub}" if sub else _joined_guess(commands, name, args)
    if not args:
        return None
    for known, cmd in commands.items():
        if not is_near_miss(name, known):
            continue
        if cmd.carries_secret(args):
            word = args[0].lower()  # named only if a known subcommand, never the secret
            return f"{known} {word}" if word in cmd.secret_subcommands else known
        sub = _sub_guess(cmd, args)
        if sub:
            return f"{known} {sub}"
    return _joined_guess(commands, name, args)
