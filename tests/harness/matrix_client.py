"""Alias of :mod:`bridgekit.testing.matrix_client` (the test kit for connector authors)."""

from bridgekit.testing import matrix_client as _moved
from bridgekit.testing.matrix_client import *  # noqa: F403


def __getattr__(name: str) -> object:
    return getattr(_moved, name)
