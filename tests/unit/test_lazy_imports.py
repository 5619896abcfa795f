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
        "import bridgekit.bridge, bridgekit.store\n"
        "from mautrix.util.async_db import Database\n"
        "assert 'asyncpg' not in sys.modules, 'asyncpg loaded for SQLite'\n"
        "assert 'sqlite' in Database.schemes and 'postgres' not in Database.schemes\n"
        "from bridgekit.db import create_database\n"
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
