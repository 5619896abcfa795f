"""A real Prosody for integration tests, and real slixmpp clients to talk to it.

Prosody (Debian's ``prosody``) runs in the foreground with a config written here: one
VirtualHost, a MUC component with message archives (XEP-0313), and the bridge's external
component (XEP-0114) with its secret, on free loopback ports. With ``upload=True`` it also runs
an XEP-0363 HTTP upload service (``mod_http_file_share`` as ``upload.<host>``) on plain HTTP on
loopback, so the URLs it hands out can be fetched by the tests. Its pid file, data and log live
in the test's work dir, so a restart keeps accounts and persistent rooms. Tests that need it
skip with a clear message when it is not installed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridgekit.testing.ports import free_port

__all__ = ["Prosody", "XmppTestClient", "find_prosody", "require_prosody"]

_RUNNING: weakref.WeakSet[Prosody] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_RUNNING):
        server.stop()


def find_prosody() -> tuple[str, str] | None:
    """(prosody, prosodyctl) binaries, or None."""
    prosody = shutil.which("prosody") or (
        "/usr/bin/prosody" if os.access("/usr/bin/prosody", os.X_OK) else None
    )
    ctl = shutil.which("prosodyctl") or (
        "/usr/bin/prosodyctl" if os.access("/usr/bin/prosodyctl", os.X_OK) else None
    )
    return (prosody, ctl) if prosody and ctl else None


def require_prosody() -> tuple[str, str]:
    found = find_prosody()
    if found is None:
        pytest.skip(
            "Prosody is not installed (apt-get install -y prosody): XMPP end-to-end "
            "tests need a real XMPP server"
        )
    return found


CONFIG = """\
-- Written by tests/harness/prosody.py
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
run_as_root = true
daemonize = false
log = {{ {level} = "{dir}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s_port} }}
c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
{http}
https_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = {{ "roster", "saslauth", "disco", "ping", "register", "mam", "pep",
                    "vcard_legacy", "posix", "presence", "message", "iq" }}
modules_disabled = {{ "s2s", "tls", "offline" }}
certificates = "{dir}/certs"

VirtualHost "{host}"

-- Without XEP-0421 occupant ids (Prosody adds them by default): ghosts keyed by nick.
Component "{muc}" "muc"
  modules_enabled = {{ "muc_mam" }}
  muc_room_locking = false
  muc_room_default_persistent = true
  muc_room_default_public = true
  restrict_room_creation = false
  max_history_messages = 50
  muc_occupant_id = false

-- With them (Prosody's default): ghosts keyed by occupant id.
Component "{muc_ids}" "muc"
  modules_enabled = {{ "muc_mam" }}
  muc_room_locking = false
  muc_room_default_persistent = true
  muc_room_default_public = true
  restrict_room_creation = false
  max_history_messages = 50

Component "{component}"
  component_secret = "{secret}"
{upload}"""

HTTP = """\
http_ports = {{ {port} }}
http_interfaces = {{ "127.0.0.1" }}
http_host = "127.0.0.1"
http_external_url = "http://127.0.0.1:{port}/"
"""

UPLOAD = """
Component "{upload}" "http_file_share"
  http_file_share_size_limit = {limit}
"""


class Prosody:
    """One Prosody process with its own config, data and log in ``workdir``."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        host: str = "localhost",
        muc: str = "muc.localhost",
        component: str = "matrix.localhost",
        log_level: str = "info",
        upload: bool = False,
        upload_size_limit: int = 1024 * 1024,
    ) -> None:
        binaries = find_prosody()
        if binaries is None:
            raise RuntimeError("prosody is not installed")
        self.prosody, self.prosodyctl = binaries
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        self.host, self.muc, self.component = host, muc, component
        #: A second MUC service, which gives XEP-0421 occupant ids (``muc`` does not).
        self.muc_ids = f"ids.{muc}"
        self.secret = secrets.token_hex(16)
        self.c2s_port = free_port()
        self.component_port = free_port()
        self.log_level = log_level
        #: The XEP-0363 service (``upload.<host>``) and its HTTP port, when enabled.
        self.upload = f"upload.{host}" if upload else None
        self.upload_size_limit = upload_size_limit
        self.http_port = free_port() if upload else None
        self.config = self.dir / "prosody.cfg.lua"
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        self.config.write_text(
            CONFIG.format(
                dir=self.dir,
                c2s_port=self.c2s_port,
                component_port=self.component_port,
                host=self.host,
                muc=self.muc,
                muc_ids=self.muc_ids,
                component=self.component,
                secret=self.secret,
                level=self.log_level,
                http=HTTP.format(port=self.http_port) if self.http_port else "http_ports = { }",
                upload=(
                    UPLOAD.format(upload=self.upload, limit=self.upload_size_limit)
                    if self.upload
                    else ""
                ),
            )
        )

    @property
    def log_path(self) -> Path:
        return self.dir / "prosody.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def _listening(self, port: int) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def start(self, timeout: float = 20) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        out = open(self.dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [self.prosody, "--config", str(self.config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        out.close()
        _RUNNING.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"prosody exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            ports = [self.c2s_port, self.component_port]
            if self.http_port:
                ports.append(self.http_port)
            if all(self._listening(port) for port in ports):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"prosody did not start in {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _RUNNING.discard(self)

    def restart(self) -> None:
        self.stop()
        self.start()

    async def register(self, user: str, password: str = "pw") -> str:
        """Create ``user@host`` (works while the server runs); returns the JID."""
        proc = await asyncio.create_subprocess_exec(
            self.prosodyctl,
            "--config",
            str(self.config),
            "register",
            user,
            self.host,
            password,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"prosodyctl register {user} failed: {out.decode(errors='replace')}")
        return f"{user}@{self.host}"

    async def client(
        self, user: str, password: str = "pw", *, register: bool = True
    ) -> XmppTestClient:
        """A connected client for ``user`` (registered first unless told not to)."""
        if register:
            await self.register(user, password)
        client = XmppTestClient(f"{user}@{self.host}/test", password, self.c2s_port)
        await client.start()
        return client

    def bridge_config(self, **extra: Any) -> dict[str, Any]:
        """The ``networks.xmpp`` section for a bridge talking to this server."""
        return {
            "enabled": True,
            "server_host": "127.0.0.1",
            "server_port": self.component_port,
            "component_jid": self.component,
            "component_secret": self.secret,
            "muc_service": self.muc,
            "reconnect_max_delay": 2,
            **extra,
        }


class XmppTestClient:
    """A real slixmpp client that records every stanza it receives."""

    def __init__(self, jid: str, password: str, port: int) -> None:
        from slixmpp import ClientXMPP

        self.xmpp = ClientXMPP(jid, password)
        self.port = port
        self.xmpp.plugin.config.update({})
        for plugin in (
            "xep_0030",
            "xep_0045",
            "xep_0054",
            "xep_0059",
            "xep_0066",
            "xep_0085",
            "xep_0203",
            "xep_0297",
            "xep_0308",
            "xep_0313",
            "xep_0333",
            "xep_0359",
            "xep_0424",
            "xep_0428",
            "xep_0444",
            "xep_0461",
            "xep_0199",
        ):
            self.xmpp.register_plugin(plugin)
        mechanisms = self.xmpp.plugin["feature_mechanisms"]
        mechanisms.unencrypted_plain = True
        mechanisms.unencrypted_scram = True
        self.messages: list[Any] = []
        self.presences: list[Any] = []
        self._changed = asyncio.Condition()
        self._started = asyncio.Event()
        self.xmpp.add_event_handler("session_start", self._session_start)
        # All messages (slixmpp's "message" event skips those without a body) and presences.
        from slixmpp.xmlstream.handler import CoroutineCallback
        from slixmpp.xmlstream.matcher import MatchXPath

        for name, into in (("message", self.messages), ("presence", self.presences)):
            self.xmpp.register_handler(
                CoroutineCallback(
                    f"test {name}", MatchXPath(f"{{jabber:client}}{name}"), self._on_stanza(into)
                )
            )

    @property
    def jid(self) -> str:
        return str(self.xmpp.boundjid.bare)

    def _on_stanza(self, into: list[Any]) -> Callable[[Any], Any]:
        async def handler(stanza: Any) -> None:
            into.append(stanza)
            async with self._changed:
                self._changed.notify_all()

        return handler

    async def _session_start(self, _: Any) -> None:
        self.xmpp.send_presence()
        self._started.set()

    async def start(self, timeout: float = 15) -> None:
        self._started.clear()
        self.xmpp.connect(host="127.0.0.1", port=self.port)
        await asyncio.wait_for(self._started.wait(), timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.xmpp.disconnect(wait=1), 3)
        self.xmpp.abort()

    async def __aenter__(self) -> XmppTestClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def wait_for(
        self, predicate: Callable[[Any], bool], timeout: float = 15, presences: bool = False
    ) -> Any:
        """The first received message (or presence) matching ``predicate``."""
        pool = self.presences if presences else self.messages

        async def find() -> Any:
            async with self._changed:
                while True:
                    for stanza in pool:
                        if predicate(stanza):
                            return stanza
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            seen = "\n".join(str(s)[:400] for s in pool[-10:])
            raise AssertionError(
                f"{self.jid}: nothing matched in {timeout}s; last:\n{seen}"
            ) from None

    async def join(self, room: str, nick: str, history: int = 0, timeout: float = 15) -> None:
        """Join a MUC (creating it: rooms are not locked on this server)."""
        pres = self.xmpp.make_presence(pto=f"{room}/{nick}")
        pres.enable("muc_join")
        pres["muc_join"]["history"]["maxstanzas"] = str(history)
        pres.send()
        await self.wait_for(
            lambda p: (
                p["from"].bare == room
                and p["from"].resource == nick
                and p["type"] != "error"
                and "110" in str(p)
            ),
            timeout,
            presences=True,
        )

    def make(self, to: str, body: str | None = None, mtype: str = "groupchat") -> Any:
        """An unsent message (add elements to ``.xml`` and call ``.send()``)."""
        msg = self.xmpp.make_message(mto=to, mtype=mtype)
        msg["id"] = self.xmpp.new_id()
        if body is not None:
            msg["body"] = body
        return msg

    def say(self, to: str, body: str, mtype: str = "groupchat") -> str:
        msg = self.make(to, body, mtype)
        msg.send()
        return msg["id"]

    def bodies(self, frm: str) -> list[str]:
        return [m["body"] for m in self.messages if m["from"].bare == frm and m["body"]]
