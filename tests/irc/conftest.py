"""Fixtures for the IRC connector's end-to-end tests: a real InspIRCd next to the real Synapse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.inspircd import InspIRCd, require_inspircd


@pytest.fixture(scope="module")
def ircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspIRCd]:
    """One InspIRCd without flood control, shared by a test module."""
    require_inspircd()
    server = InspIRCd(tmp_path_factory.mktemp("inspircd"), flood_control=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()
