"""Libraries a bridge may never call are loaded only when it does (each costs MiB of RSS).

Run in a fresh interpreter: the test process itself has long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_fresh(code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_sqlite_bridge_does_not_load_asyncpg_until_postgres_is_configured() -> None:
    run_fresh(
        "import sys\n"
        "import bridgekit.bridge, bridgekit.database.store\n"
        "from mautrix.util.async_db import Database\n"
        "assert 'asyncpg' not in sys.modules, 'asyncpg loaded for SQLite'\n"
        "assert 'sqlite' in Database.schemes and 'postgres' not in Database.schemes\n"
        "from bridgekit.database.db import create_database\n"
        "db = create_database('postgresql://bridge@127.0.0.1:1/bridge')\n"
        "assert 'asyncpg' in sys.modules\n"
        "assert type(db).__name__ == 'PostgresDatabase', type(db)\n"
    )


def test_irc_connector_loads_cryptography_when_a_password_is_stored() -> None:
    pytest.importorskip("cryptography")
    run_fresh(
        "import sys\n"
        "import bridges.irc.connector\n"
        "from bridges.irc.crypto import SecretBox\n"
        "assert 'cryptography' not in sys.modules, 'cryptography loaded at import'\n"
        "box = SecretBox(b'k' * 32)\n"
        "assert not any(m.startswith('cryptography') for m in sys.modules)\n"
        "token = box.encrypt('hunter2')\n"
        "assert token.startswith('v1:') and 'cryptography' in sys.modules\n"
        "assert box.decrypt(token) == 'hunter2'\n"
    )


def test_prometheus_client_is_loaded_when_metrics_are_first_scraped() -> None:
    run_fresh(
        "import asyncio, sys\n"
        "import bridgekit.cli, bridgekit.bridge\n"
        "from bridgekit.metrics import Metrics, StatusServer\n"
        "assert 'prometheus_client' not in sys.modules, 'prometheus_client loaded at import'\n"
        "m = Metrics()\n"
        "m.events_in('remote', 3)\n"
        "m.handled('remote', 0.003)\n"
        "m.handled('remote', 20.0)\n"
        "m.observe_ack(0.0004, 1)\n"
        "m.error('outbox')\n"
        "assert 'prometheus_client' not in sys.modules, 'loaded by counting'\n"
        "server = StatusServer(m, dict, lambda: {'outbox': 7})\n"
        "text = asyncio.run(server.handle_metrics(None)).body.decode()\n"
        "assert 'prometheus_client' in sys.modules\n"
        "for line in (\n"
        "    'bridgekit_events_in_total{source=\"remote\"} 3.0',\n"
        '    \'bridgekit_handling_seconds_bucket{le="0.005",source="remote"} 1.0\',\n'
        '    \'bridgekit_handling_seconds_bucket{le="10.0",source="remote"} 1.0\',\n'
        '    \'bridgekit_handling_seconds_bucket{le="+Inf",source="remote"} 2.0\',\n'
        "    'bridgekit_handling_seconds_count{source=\"remote\"} 2.0',\n"
        "    'bridgekit_handling_seconds_sum{source=\"remote\"} 20.003',\n"
        "    'bridgekit_transaction_ack_seconds_bucket{le=\"0.0005\"} 1.0',\n"
        "    'bridgekit_errors_total{where=\"outbox\"} 1.0',\n"
        "    'bridgekit_queue_depth{queue=\"outbox\"} 7.0',\n"
        "):\n"
        "    assert line in text.splitlines(), (line, text)\n"
    )
