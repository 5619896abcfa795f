"""A real InspIRCd 3 server for integration tests (the raw IRC client that drives it is in
:mod:`tests.harness.irc_client`).

Tests against a real IRCd catch what mocks cannot: numerics, CAP negotiation,
flood limits and line-length behaviour.  The server runs in the foreground
(``--nofork``) in a private work dir on a free loopback port, so parallel
tests and restarts never interfere with anything else on the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from bridges.irc.lines import Message, ParseError, build_line, parse_line
from tests.harness.irc_client import IrcTestClient

__all__ = [
    "InspIRCd",
    "link_servers",
    "InspIRCdError",
    "InspIRCdUnavailable",
    "IrcTestClient",
    "find_inspircd",
    "free_port",
    "inspircd_server",
    "require_inspircd",
]

INSPIRCD_ENV = "BRIDGEKIT_INSPIRCD"
MODULE_DIR = Path("/usr/lib/inspircd/modules")
# IRCv3 support the bridge relies on.  m_sasl is deliberately absent: without
# services it advertises a SASL cap that can never succeed.
OPTIONAL_MODULES = (
    "cap",
    "ircv3",
    "ircv3_servertime",
    "ircv3_msgid",
    "ircv3_echomessage",
    "ircv3_ctctags",
)
_LOCAL_LIMIT = 20000
_BIND_FAILURE = "listeners failed to bind"
_READY = "is now running as"
LINK_PASSWORD = "bridgekit-link"
# Servers still running when the interpreter exits (a crashed test run) are stopped
# so that no orphaned inspircd keeps its port.
_RUNNING: weakref.WeakSet[InspIRCd] = weakref.WeakSet()


@atexit.register
def _stop_leftover_servers() -> None:
    for server in list(_RUNNING):
        server.stop()


def _fd_limit() -> int:
    """File descriptors to give the server: enough for _LOCAL_LIMIT clients if allowed."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return _LOCAL_LIMIT + 64 if hard == resource.RLIM_INFINITY else min(_LOCAL_LIMIT + 64, hard)


class InspIRCdError(RuntimeError):
    """The server failed to start or stop; the message includes its log tail."""


class InspIRCdUnavailable(InspIRCdError):
    """No InspIRCd binary is installed."""


def find_inspircd() -> str | None:
    """Path of the inspircd binary ($BRIDGEKIT_INSPIRCD, PATH, or Debian's /usr/sbin)."""
    override = os.environ.get(INSPIRCD_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which("inspircd")
    if found:
        return found
    debian = "/usr/sbin/inspircd"
    return debian if os.access(debian, os.X_OK) else None


def require_inspircd() -> str:
    """Return the binary path or skip the calling test with an actionable message."""
    binary = find_inspircd()
    if binary is None:
        pytest.skip(
            "InspIRCd is not installed (apt-get install -y inspircd, "
            f"or set {INSPIRCD_ENV} to the binary)"
        )
    return binary


def free_port(host: str = "127.0.0.1") -> int:
    """A currently unused TCP port on ``host``, outside the ephemeral range (see the kit's)."""
    from bridgekit.testing.ports import free_port as kit_free_port

    return kit_free_port(host)


def _write_self_signed(cert_path: Path, key_path: Path, host: str) -> None:
    """A self-signed certificate (its own CA) for ``host``, 127.0.0.1 and localhost."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bridgekit test ircd")])
    now = datetime.datetime.now(datetime.UTC)
    addresses = {ipaddress.ip_address("127.0.0.1")}
    with contextlib.suppress(ValueError):
        addresses.add(ipaddress.ip_address(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), *(x509.IPAddress(a) for a in addresses)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _available_modules() -> list[str]:
    return [name for name in OPTIONAL_MODULES if (MODULE_DIR / f"m_{name}.so").exists()]


_LOG_NOISE = ("module was unloaded", "New module introduced")


def _tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` meaningful lines of a log (module load/unload chatter dropped)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"<{path.name} missing>"
    kept = [line for line in text.splitlines() if not any(n in line for n in _LOG_NOISE)]
    return "\n".join(kept[-lines:]) or f"<{path.name} empty>"


class InspIRCd:
    """One InspIRCd process with its own config, logs and pid file in ``workdir``.

    ``flood_control=False`` disables fakelag and raises the command-rate
    limits so that benchmarks measure the bridge rather than the server's
    throttling.  The port is fixed on first start, so :meth:`restart` (or
    stop + start) comes back on the same address.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        port: int | None = None,
        flood_control: bool = True,
        server_name: str = "irc.bridgekit.test",
        *,
        host: str = "127.0.0.1",
        extra_config: str = "",
        start_timeout: float = 20.0,
        server_id: str | None = None,
        tls: bool = False,
        client_password: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        #: The server's SID (digit + two letters/digits); linked servers need distinct ones.
        self.server_id = server_id
        #: Port for server-to-server links (``m_spanningtree``); set by :func:`link_servers`.
        self.link_port: int | None = None
        self.peers: list[InspIRCd] = []
        #: The peer this server keeps (re)connecting to, every second.
        self.uplink: InspIRCd | None = None
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.flood_control = flood_control
        #: With ``tls``, a second client port speaks TLS (``ssl_gnutls``) with a self-signed
        #: certificate for 127.0.0.1 and localhost (:attr:`cert_path`, also its own CA).
        self.tls_port = free_port(host) if tls else None
        #: With ``client_password``, every client must send it (``PASS``) to register.
        self.client_password = client_password
        self.server_name = server_name
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.modules = _available_modules()
        self._process: subprocess.Popen[bytes] | None = None
        self._output_offset = 0

    # -- paths -------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.workdir / "inspircd.conf"

    @property
    def log_path(self) -> Path:
        """InspIRCd's own log (``<log>`` tag)."""
        return self.workdir / "ircd.log"

    @property
    def output_path(self) -> Path:
        """The process's stdout/stderr."""
        return self.workdir / "inspircd.out"

    @property
    def cert_path(self) -> Path:
        """The TLS listener's certificate (PEM), to be trusted as a CA by clients."""
        return self.workdir / "tls-cert.pem"

    @property
    def key_path(self) -> Path:
        return self.workdir / "tls-key.pem"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "inspircd.pid"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- config ------------------------------------------------------------
    def config_text(self) -> str:
        """The full configuration for the current settings."""
        if self.flood_control:
            flood = 'threshold="10" commandrate="1000" fakelag="yes"'
        else:
            flood = 'threshold="1000000" commandrate="1000000000" fakelag="no"'
        modules = "\n".join(f'<module name="{name}">' for name in self.modules)
        password = (
            f'password="{self.client_password}" hash="plaintext"' if self.client_password else ""
        )
        local_class = f"""\
         timeout="60" pingfreq="120" {password}
         hardsendq="1048576" softsendq="65536" recvq="65536"
         {flood}
         localmax="{_LOCAL_LIMIT}" globalmax="{_LOCAL_LIMIT}" maxconnwarn="no"
         limit="{_LOCAL_LIMIT}" maxchans="1000"
         resolvehostnames="no" useident="no">"""
        # Every tag below is load-bearing:
        #  * <connect> must use hardsendq/softsendq/recvq; an unknown "sendq"
        #    leaves a tiny default and every client gets dropped;
        #  * no DNS exists here, so resolvehostnames="no" and a fast-failing <dns>;
        #  * the default netbuffersize (10240) stalls bulk writers.
        sid = f' id="{self.server_id}"' if self.server_id else ""
        return f"""\
<server name="{self.server_name}"{sid} description="bridgekit test server" network="BridgekitTest">
<admin name="bridgekit" nick="admin" email="admin@{self.server_name}">
<bind address="{self.host}" port="{self.port}" type="clients">
<pid file="{self.pid_path}">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{self.log_path}">
<dns server="127.0.0.1" timeout="1">
<files motd="{self.workdir / "inspircd.motd"}">
<performance netbuffersize="65534" somaxconn="1024" softlimit="{_fd_limit() - 64}"
             quietbursts="yes" clonesonconnect="yes">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes"
         pingwarning="15" splitwhois="no" exemptchanops="">
<security hideserver="" userstats="Pu" customversion="" flatlinks="no" hidesplits="no"
          hideulines="no" hidebans="no" maxtargets="20">
<limits maxnick="30" maxchan="64" maxident="10" maxhost="64" maxtopic="330"
        maxkick="300" maxquit="300" maxreal="130" maxaway="200" maxmodes="20">
<channels users="1000" opers="1000">
<whowas groupsize="10" maxgroups="100000" maxkeep="3d">
<connect name="local" allow="127.0.0.1"
{local_class}
<connect name="loopback" allow="127.0.0.0/8"
{local_class}
<connect name="main" allow="*" timeout="60" pingfreq="120" {password}
         hardsendq="262144" softsendq="8192" recvq="8192"
         threshold="10" commandrate="1000" fakelag="yes"
         localmax="10" globalmax="10" maxconnwarn="no"
         resolvehostnames="no" useident="no">
{modules}
{self.tls_config()}
{self.link_config()}
{self.extra_config}
"""

    def tls_config(self) -> str:
        """``ssl_gnutls`` and a TLS client listener on :attr:`tls_port` (when enabled);
        ``sslinfo`` makes WHOIS say who is on a secure connection."""
        if self.tls_port is None:
            return ""
        return f"""\
<module name="ssl_gnutls">
<module name="sslinfo">
<sslprofile name="bridgekit" provider="gnutls" certfile="{self.cert_path}"
            keyfile="{self.key_path}" dhfile="" hash="sha256" requestclientcert="no">
<bind address="{self.host}" port="{self.tls_port}" type="clients" sslprofile="bridgekit">"""

    def link_config(self) -> str:
        """``m_spanningtree``: a server listener and a ``<link>`` per peer (loopback only)."""
        if self.link_port is None:
            return ""
        lines = [
            '<module name="spanningtree">',
            f'<bind address="{self.host}" port="{self.link_port}" type="servers">',
        ]
        for peer in self.peers:
            lines.append(
                f'<link name="{peer.server_name}" ipaddr="{peer.host}" port="{peer.link_port}"'
                f' allowmask="127.0.0.0/8" timeout="5s"'
                f' sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}">'
            )
        if self.uplink is not None:
            lines.append(f'<autoconnect period="1s" server="{self.uplink.server_name}">')
        return "\n".join(lines)

    def write_config(self) -> None:
        """Write the config (and an MOTD) into the work dir."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "inspircd.motd").write_text("bridgekit test server\n")
        if self.tls_port is not None and not self.cert_path.exists():
            _write_self_signed(self.cert_path, self.key_path, self.host)
        self.config_path.write_text(self.config_text())

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Start the server and wait until a client can register on it."""
        if self.running:
            return
        binary = find_inspircd()
        if binary is None:
            raise InspIRCdUnavailable("inspircd binary not found")
        self.write_config()
        self._output_offset = self.output_path.stat().st_size if self.output_path.exists() else 0
        output = open(self.output_path, "ab")  # the child keeps its own descriptor
        # Raise the fd limit in the child only (via sh) so it can hold _LOCAL_LIMIT clients.
        command = [
            "sh",
            "-c",
            'ulimit -n "$0" 2>/dev/null; exec "$@"',
            str(_fd_limit()),
            binary,
            f"--config={self.config_path}",
            "--runasroot",
            "--nofork",
        ]
        try:
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            output.close()
        _RUNNING.add(self)
        try:
            self._wait_until_ready()
        except BaseException:
            self._terminate()
            raise

    def _wait_until_ready(self) -> None:
        started = time.monotonic()
        deadline = started + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                raise InspIRCdError(self._failure(f"inspircd exited with status {code}"))
            output = self._new_output()
            if _BIND_FAILURE in output:
                raise InspIRCdError(
                    self._failure(f"inspircd could not bind {self.host}:{self.port}")
                )
            # Probe only once startup is complete: a probe against a port someone
            # else holds would otherwise hang until its socket timeout.
            if _READY not in output and time.monotonic() - started < 5:
                time.sleep(0.02)
                continue
            try:
                self._registration_round_trip()
                return
            except (OSError, InspIRCdError) as exc:
                last_error = exc
                time.sleep(0.05)
        raise InspIRCdError(
            self._failure(f"not ready after {self.start_timeout}s (last error: {last_error})")
        )

    def _new_output(self) -> str:
        """What the process printed since this start (the file is shared across restarts)."""
        try:
            with open(self.output_path, "rb") as handle:
                handle.seek(self._output_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _registration_round_trip(self) -> None:
        """Connect, register and quit: proves the listener and the connect class work."""
        self._probe()

    def _probe(self, *command: str, end: str = "") -> list[Message]:
        """Register a throwaway client and return what the server sent it.

        Without ``command`` it quits as soon as it is registered; with one it sends it after
        the MOTD and quits on the numeric ``end`` (``LINKS`` ends with 365).
        """
        # Unique even across linked servers, where one nick is one user network-wide.
        nick = f"probe{os.getpid() % 1000}{os.urandom(3).hex()}"
        replies: list[Message] = []
        with socket.create_connection(self.address, timeout=2) as sock:
            login = build_line("PASS", self.client_password) if self.client_password else b""
            sock.sendall(
                login + build_line("NICK", nick) + build_line("USER", "probe", "0", "*", "probe")
            )
            buffer = b""
            while True:
                data = sock.recv(4096)
                if not data:
                    raise InspIRCdError(f"connection closed during registration: {buffer!r}")
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    try:
                        message = parse_line(raw)
                    except ParseError:
                        continue
                    replies.append(message)
                    if message.command == "PING":
                        sock.sendall(build_line("PONG", *message.params[:1]))
                    elif message.command == (end if command else "001"):
                        sock.sendall(build_line("QUIT", "probe done"))
                        return replies
                    elif message.command in ("376", "422") and command:  # end of MOTD
                        sock.sendall(build_line(*command))
                    elif message.command == "ERROR":
                        raise InspIRCdError(f"server refused probe: {message.params}")

    def _failure(self, reason: str) -> str:
        return (
            f"{reason}\n--- {self.output_path} ---\n{_tail(self.output_path)}"
            f"\n--- {self.log_path} ---\n{_tail(self.log_path)}"
        )

    def _terminate(self) -> int | None:
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        return process.returncode

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        self._terminate()

    def kill(self) -> None:
        """SIGKILL: the server vanishes without a goodbye, as in a crash or a cut link."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def links(self) -> set[str]:
        """The names of the servers this one sees on its network (itself included)."""
        replies = self._probe("LINKS", end="365")
        return {m.params[1] for m in replies if m.command == "364" and len(m.params) > 1}

    def wait_linked(self, *names: str, timeout: float = 20.0) -> None:
        """Block until every server in ``names`` is linked into this one's network."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = self.links()
            if set(names) <= seen:
                return
            time.sleep(0.1)
        raise InspIRCdError(self._failure(f"{names} not linked after {timeout}s (seen: {seen})"))

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> InspIRCd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------
    def client(self) -> IrcTestClient:
        """A not-yet-connected :class:`IrcTestClient` for this server."""
        return IrcTestClient(self.host, self.port)


def link_servers(hub: InspIRCd, leaf: InspIRCd) -> None:
    """Configure ``leaf`` to link to ``hub`` with ``m_spanningtree`` (before either starts).

    The leaf keeps reconnecting every second, so a leaf that was killed and started again
    links back by itself: a netsplit and its healing, on loopback. Give the two distinct
    ``server_name``s (``hub.test``, ``leaf.test``) and ``server_id``s.
    """
    if hub.server_name == leaf.server_name:
        raise ValueError("linked servers need distinct names")
    for server, peer in ((hub, leaf), (leaf, hub)):
        if server.link_port is None:
            server.link_port = free_port(server.host)
        if peer not in server.peers:
            server.peers.append(peer)
    leaf.uplink = hub


@pytest.fixture
def inspircd_server(tmp_path: Path) -> Iterator[InspIRCd]:
    """A started InspIRCd (stock flood limits) in the test's tmp dir; skips if not installed."""
    require_inspircd()
    server = InspIRCd(tmp_path / "inspircd")
    server.start()
    try:
        yield server
    finally:
        server.stop()
