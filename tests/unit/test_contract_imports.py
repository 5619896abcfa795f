"""The contract (bridgekit.contract) imports nothing of the runtime: a connector built on it
does not drag in, or depend on, the portals, the store or the Matrix client."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import bridgekit.contract.capabilities, bridgekit.contract.commands, bridgekit.contract.connector
import bridgekit.contract.events, bridgekit.contract.ids, bridgekit.contract.relay_format
import bridgekit.contract.login, bridgekit.contract.results, bridgekit.contract.html_lists
import bridgekit.contract.live_gate, bridgekit.contract.file_checks
import bridgekit.contract.http_listener
runtime = sorted(
    m for m in sys.modules
    if m.startswith("bridgekit.") and not m.startswith("bridgekit.contract")
)
print(",".join(runtime))
"""


def test_the_contract_loads_no_runtime_module() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"the contract imported runtime modules: {out}"
