"""Secrets stay out of the log even at DEBUG: the libraries that would print them are held at
INFO (mautrix's request URLs, aiosqlite's statement parameters, slack-sdk's socket URLs)."""

from __future__ import annotations

import logging

import pytest

from bridgekit.cli import QUIET_AT_DEBUG, setup_logging
from bridgekit.config import Config

pytestmark = pytest.mark.engine_independent


def test_debug_logging_keeps_secret_carrying_loggers_at_info(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    saved = {name: logging.getLogger(name).level for name in QUIET_AT_DEBUG}
    saved_root = root.level
    try:
        setup_logging(Config.from_dict({"logging": {"level": "DEBUG"}}))
        assert root.level == logging.DEBUG
        for name in ("aiosqlite", "slack_sdk", "bridgekit.matrix.client.api"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    finally:
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
