"""Alias of :mod:`bridgekit.testing.ports` (the test kit for connector authors)."""

from bridgekit.testing import ports as _moved
from bridgekit.testing.ports import *  # noqa: F403


def __getattr__(name: str) -> object:
    return getattr(_moved, name)
