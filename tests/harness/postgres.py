"""Alias of :mod:`bridgekit.testing.postgres` (the test kit for connector authors)."""

from bridgekit.testing import postgres as _moved
from bridgekit.testing.postgres import *  # noqa: F403


def __getattr__(name: str) -> object:
    return getattr(_moved, name)
