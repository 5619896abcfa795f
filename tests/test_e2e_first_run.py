"""What an admin sees on a first run that is not set up right yet (real Synapse).

The two usual mistakes, a homeserver the bridge cannot reach and a registration the homeserver
has not loaded, are each said once, in words that say what to fix, and the bridge keeps
trying: once the homeserver accepts it, it comes up without a restart.
"""

from __future__ import annotations

import logging

import pytest

from bridgekit.matrix import client as matrix
from tests.conftest import BridgeEnv, eventually

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


def said(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


async def test_an_unregistered_as_token_is_explained_and_retried_until_accepted(
    make_bridge, bridge_env: BridgeEnv, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger="bridgekit")
    monkeypatch.setattr(matrix, "UNREGISTERED_RETRY", 0.3)
    bridge = await make_bridge(**{"appservice.as_token": "a-token-synapse-never-loaded"})
    hint = "does not accept this bridge's as_token"
    await eventually(lambda: said(caplog, hint))
    (record,) = said(caplog, hint)
    assert record.levelno == logging.ERROR and not record.exc_info  # words, not a stack trace
    assert "app_service_config_files" in record.getMessage()
    assert not said(caplog, "Homeserver -> bridge ping OK")
    assert not said(caplog, "Could not set up the bridge bot")
    tried = len(said(caplog, "registering the bot"))  # nothing transient: no retry lines

    # The admin fixes the registration; the running bridge comes up on its next try.
    assert bridge.matrix.api is not None
    bridge.matrix.api.token = bridge_env.as_token
    await eventually(lambda: said(caplog, "Homeserver -> bridge ping OK"), timeout=20)
    assert len(said(caplog, hint)) == 1  # said once, not on every try
    assert len(said(caplog, "registering the bot")) == tried


async def test_an_unreachable_homeserver_is_named_once(make_bridge, caplog):
    """Said once, as the README promises: not followed by a warning on every retry."""
    caplog.set_level(logging.DEBUG, logger="bridgekit")
    await make_bridge(**{"homeserver.address": "http://127.0.0.1:9"})  # discard: nobody there
    hint = "Cannot reach the homeserver at http://127.0.0.1:9 (homeserver.address"
    await eventually(lambda: said(caplog, hint))
    await eventually(lambda: len(said(caplog, "registering the bot failed")) >= 3, timeout=20)
    loud = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("bridgekit")
    ]
    assert len(loud) == 1 and hint in loud[0], loud  # still trying, quietly
    assert not said(caplog, "Could not set up the bridge bot")
