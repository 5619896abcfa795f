"""Run a real Synapse homeserver as a subprocess for integration tests."""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import hmac
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import aiohttp
import yaml

from bridgekit.testing.matrix_client import MatrixTestClient, decode_response
from bridgekit.testing.ports import free_port

START_TIMEOUT = 120.0
_RELAXED = {"per_second": 1000, "burst_count": 1000}


class SynapseStartError(RuntimeError):
    """Synapse did not come up; the message includes the tail of its logs."""


def _tail(path: Path, lines: int = 50) -> str:
    """Return the last `lines` lines of a text file (or a placeholder)."""
    try:
        content = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"<{path} not readable>"
    return "\n".join(content[-lines:])


def postgres_database_config(url: str) -> dict[str, Any]:
    """Synapse's ``database`` section for a ``postgres://user[:password]@host:port/db`` URL."""
    parts = urlsplit(url)
    args: dict[str, Any] = {
        "user": unquote(parts.username or "postgres"),
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": parts.path.lstrip("/") or "postgres",
        "cp_min": 1,
        "cp_max": 5,
    }
    if parts.password:
        args["password"] = unquote(parts.password)
    # Test databases take the server's locale; Synapse wants C collation, for sorting that
    # nothing in the tests depends on.
    return {"name": "psycopg2", "allow_unsafe_locale": True, "args": args}


class SynapseServer:
    """A Synapse process whose data and port survive stop()/start(): SQLite storage in the
    workdir, or a PostgreSQL database given as ``database_url`` (its schema is Synapse's,
    so use a database of its own; psycopg2 must be installed: ``matrix-synapse[postgres]``)."""

    def __init__(
        self,
        workdir: Path,
        registration_files: list[Path],
        server_name: str = "bridgekit.test",
        port: int | None = None,
        python: str = sys.executable,
        *,
        extra_config: dict[str, Any] | None = None,
        database_url: str | None = None,
        admin_keys: bool = False,
    ) -> None:
        """``admin_keys``: ``app_service_config_files`` and ``experimental_features`` are
        left as homeserver.yaml has them (as an admin, or ``generate-registration
        --homeserver-config``, wrote them: see :meth:`write_config`), not set from
        ``registration_files`` and the encryption defaults."""
        self.admin_keys = admin_keys
        self.workdir = Path(workdir).resolve()
        self.database_url = database_url
        self.registration_files = [Path(p).resolve() for p in registration_files]
        self._server_name = server_name
        self._port = port if port is not None else free_port()
        self.python = python
        self.extra_config = dict(extra_config or {})
        self._secret = secrets.token_hex(32)
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._atexit_registered = False
        self.last_start_seconds: float | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def server_name(self) -> str:
        """Matrix server name (domain part of MXIDs)."""
        return self._server_name

    @property
    def port(self) -> int:
        """TCP port of the client listener (stable across restarts)."""
        return self._port

    @property
    def base_url(self) -> str:
        """Client API base URL, http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def registration_shared_secret(self) -> str:
        """Secret for /_synapse/admin/v1/register (fixed per workdir)."""
        return self._secret

    @property
    def config_path(self) -> Path:
        """Generated homeserver.yaml."""
        return self.workdir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        """Synapse's own log file (WARNING level unless BRIDGEKIT_SYNAPSE_LOG is set)."""
        return self.workdir / "homeserver.log"

    @property
    def stdout_path(self) -> Path:
        """Captured stdout/stderr of the Synapse process."""
        return self.workdir / "synapse.stdout.log"

    @property
    def running(self) -> bool:
        """True while the Synapse process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- config -------------------------------------------------------------------------------

    def _generate_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.config_path.exists():
            return
        cmd = [
            self.python,
            "-m",
            "synapse.app.homeserver",
            "--server-name",
            self._server_name,
            "--config-path",
            str(self.config_path),
            "--generate-config",
            "--report-stats=no",
        ]
        res = subprocess.run(cmd, cwd=self.workdir, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise SynapseStartError(f"generate-config failed:\n{res.stdout}\n{res.stderr}")

    def _write_log_config(self) -> Path:
        level = "INFO" if os.environ.get("BRIDGEKIT_SYNAPSE_LOG") else "WARNING"
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                    "%(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
            "root": {"level": level, "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        path = self.workdir / "log.config.yaml"
        path.write_text(yaml.safe_dump(log_config), encoding="utf-8")
        return path

    def write_config(self) -> Path:
        """Write homeserver.yaml (generated by Synapse, then set up for the tests) without
        starting; :meth:`start` rewrites it the same way."""
        self._write_config()
        return self.config_path

    def _write_config(self) -> None:
        self._generate_config()
        config: dict[str, Any] = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        secret_file = self.workdir / "registration_shared_secret.txt"
        if secret_file.exists():  # reused workdir: keep the secret it was set up with
            self._secret = secret_file.read_text(encoding="utf-8").strip()
        else:
            secret_file.write_text(self._secret, encoding="utf-8")
        config.update(
            {
                "listeners": [
                    {
                        "port": self._port,
                        "bind_addresses": ["127.0.0.1"],
                        "type": "http",
                        "tls": False,
                        "x_forwarded": False,
                        "resources": [{"names": ["client", "federation"], "compress": False}],
                    }
                ],
                "log_config": str(self._write_log_config()),
                "media_store_path": str(self.workdir / "media_store"),
                "trusted_key_servers": [],
                "suppress_key_server_warning": True,
                "federation_domain_whitelist": [],
                "enable_registration": True,
                "enable_registration_without_verification": True,
                "registration_shared_secret": self._secret,
                "report_stats": False,
                "url_preview_enabled": False,
                "presence": {"enabled": True},
                "rc_message": _RELAXED,
                "rc_registration": _RELAXED,
                "rc_registration_token_validity": _RELAXED,
                "rc_login": {
                    "address": _RELAXED,
                    "account": _RELAXED,
                    "failed_attempts": _RELAXED,
                },
                "rc_joins": {"local": _RELAXED, "remote": _RELAXED},
                "rc_joins_per_room": _RELAXED,
                "rc_invites": {
                    "per_room": _RELAXED,
                    "per_user": _RELAXED,
                    "per_issuer": _RELAXED,
                },
                "rc_third_party_invite": _RELAXED,
                "rc_3pid_validation": _RELAXED,
                "rc_admin_redaction": _RELAXED,
                "rc_presence": {"per_user": _RELAXED},
                "rc_room_creation": _RELAXED,
                "rc_media_create": _RELAXED,
                "rc_profile": _RELAXED,
                "rc_user_directory": _RELAXED,
                "rc_reports": _RELAXED,
                "rc_delayed_event_mgmt": _RELAXED,
                "rc_key_requests": _RELAXED,
            }
        )
        if self.database_url:
            config["database"] = postgres_database_config(self.database_url)
        if not self.admin_keys:
            config["app_service_config_files"] = [str(p) for p in self.registration_files]
            # End-to-bridge encryption (bridgekit/crypto): to-device messages and MSC3202's
            # fields reach the appservices that ask for them in their registration.
            config["experimental_features"] = {
                "msc2409_to_device_messages_enabled": True,
                "msc3202_transaction_extensions": True,
                **(self.extra_config.get("experimental_features") or {}),
            }
        config.update({k: v for k, v in self.extra_config.items() if k != "experimental_features"})
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    # -- process control ----------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start Synapse and block until the client API answers (idempotent)."""
        if self.running:
            return
        self._write_config()
        begin = time.monotonic()
        self._out = open(self.stdout_path, "ab")  # closed in stop()
        self._out.write(f"\n==== starting synapse at {time.ctime()} ====\n".encode())
        self._out.flush()
        self._proc = subprocess.Popen(
            [self.python, "-m", "synapse.app.homeserver", "--config-path", str(self.config_path)],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        url = f"{self.base_url}/_matrix/client/versions"
        deadline = begin + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise self._start_error(f"Synapse exited with code {code} during startup")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise self._start_error(f"Synapse did not answer {url} within {timeout}s")
            time.sleep(0.1)
        self.last_start_seconds = time.monotonic() - begin

    def _start_error(self, reason: str) -> SynapseStartError:
        return SynapseStartError(
            f"{reason}\n--- {self.stdout_path} (last 50 lines) ---\n{_tail(self.stdout_path)}"
            f"\n--- {self.log_path} (last 50 lines) ---\n{_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM Synapse, wait, then SIGKILL if needed (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._out is not None:
            self._out.close()
            self._out = None

    def restart(self) -> None:
        """stop() then start(): same port, same data."""
        self.stop()
        self.start()

    def __enter__(self) -> SynapseServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- appservices --------------------------------------------------------------------------

    def appservice_state(self, as_id: str) -> str | None:
        """Synapse's view of an appservice: "up", "down" (its recoverer holds the transactions
        back and ephemeral events are dropped) or None (nothing sent yet). SQLite storage only."""
        if self.database_url:
            raise NotImplementedError("appservice_state reads Synapse's SQLite database")
        db = self.workdir / "homeserver.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            row = conn.execute(
                "SELECT state FROM application_services_state WHERE as_id = ?", (as_id,)
            ).fetchone()
        return row[0] if row else None

    async def recover_appservice(self, as_id: str, as_token: str, timeout: float = 30) -> None:
        """If Synapse counts the appservice as down, make it retry now (a successful ping does)
        and wait until it has sent what it held back, rather than after its backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        url = f"{self.base_url}/_matrix/client/v1/appservice/{as_id}/ping"
        headers = {"Authorization": f"Bearer {as_token}"}
        async with aiohttp.ClientSession() as http:
            while await asyncio.to_thread(self.appservice_state, as_id) == "down":
                if loop.time() > deadline:
                    raise TimeoutError(f"Synapse still counts appservice {as_id} as down")
                # 502 "AlreadyCalled" while its recoverer is mid-retry: Synapse cannot force a
                # retry then; try again in a moment.
                async with http.post(url, json={}, headers=headers) as resp:
                    await resp.read()
                await asyncio.sleep(0.05)

    # -- users --------------------------------------------------------------------------------

    def user_id(self, localpart: str) -> str:
        """Return the full MXID of a local user."""
        return f"@{localpart}:{self._server_name}"

    async def register_user(
        self, localpart: str, password: str = "pw", admin: bool = False
    ) -> MatrixTestClient:
        """Register a user via the shared-secret admin API; return a logged-in client."""
        url = f"{self.base_url}/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                nonce = str((await decode_response(resp))["nonce"])
            mac = hmac.new(self._secret.encode(), digestmod=hashlib.sha1)
            for part in (nonce, localpart, password):
                mac.update(part.encode())
                mac.update(b"\x00")
            mac.update(b"admin" if admin else b"notadmin")
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            async with session.post(url, json=body) as resp:
                data = await decode_response(resp)
        return MatrixTestClient(
            self.base_url, data["user_id"], data["access_token"], data.get("device_id")
        )

    async def login(self, localpart: str, password: str = "pw") -> MatrixTestClient:
        """Password-login an existing user and return a new client (new device)."""
        return await MatrixTestClient.login(self.base_url, localpart, password)


def start_synapse(
    workdir: Path,
    registration_files: list[Path] | None = None,
    server_name: str = "bridgekit.test",
    port: int | None = None,
    python: str = sys.executable,
    *,
    extra_config: dict[str, Any] | None = None,
    database_url: str | None = None,
) -> SynapseServer:
    """Create and start a SynapseServer (caller must stop() it, e.g. in a fixture finalizer)."""
    server = SynapseServer(
        workdir,
        registration_files or [],
        server_name,
        port,
        python,
        extra_config=extra_config,
        database_url=database_url,
    )
    server.start()
    return server
