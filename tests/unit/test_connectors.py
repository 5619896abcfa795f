"""Finding installed connectors: by entry point, each imported only when a config asks for it."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from bridgekit.bridge import discover_connectors


def test_installed_connectors_are_listed_by_name() -> None:
    assert {"fake", "irc", "xmpp"} <= set(discover_connectors())


def test_a_connector_is_imported_only_when_asked_for() -> None:
    # A fresh interpreter: this one has imported every connector in other tests.
    code = (
        "import sys\n"
        "from bridgekit.bridge import discover_connectors\n"
        "found = discover_connectors()\n"
        "assert 'xmpp' in list(found)\n"
        "assert not any(m.startswith(('bridges.', 'slixmpp')) for m in sys.modules), 'eager'\n"
        "assert found['irc'].__name__ == 'IRCConnector'\n"
        "assert 'bridges.irc.connector' in sys.modules\n"
        "assert 'slixmpp' not in sys.modules and 'bridges.xmpp.connector' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_connector_that_fails_to_import_counts_as_not_installed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = discover_connectors()
    found._points["broken"] = EntryPoint("broken", "no_such_module_here:Connector", "g")
    assert found.get("broken") is None
    assert found.get("broken") is None  # tried once, remembered
    assert [r.getMessage() for r in caplog.records if "broken" in r.getMessage()] == [
        "Could not load connector broken: No module named 'no_such_module_here'"
    ]
    with pytest.raises(KeyError):
        found["broken"]
    assert found.get("fake") is not None
