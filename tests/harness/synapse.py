"""Alias of :mod:`bridgekit.testing.synapse` (the test kit for connector authors)."""

from bridgekit.testing import synapse as _moved
from bridgekit.testing.synapse import *  # noqa: F403


def __getattr__(name: str) -> object:
    return getattr(_moved, name)
