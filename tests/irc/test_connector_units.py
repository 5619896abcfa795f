"""Unit tests of the IRC connector's pure parts (no servers needed)."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from bridgekit.contract.events import PortalKey
from bridges.irc import crypto
from bridges.irc.client import IRCConnection, ISupport
from bridges.irc.config import READ_STREAM_GAP, parse, validate
from bridges.irc.connector import IRCConnector
from bridges.irc.netsplit import NetsplitDebouncer, is_netsplit_quit
from bridges.irc.outgoing import clean_text, one_line, short_diff
from bridges.irc.pacing import StartPacer, TokenBucket
from bridges.irc.protocol import IRCProtocol


def test_config_validation_reports_every_key():
    assert validate({"enabled": True}) == []
    assert validate({"servers": {"local": {"host": "127.0.0.1"}}}) == []
    problems = dict(
        validate(
            {
                "bogus": 1,
                "servers": {
                    "Bad_Name": {
                        "host": "",
                        "port": 70000,
                        "tls": "yes",
                        "follow_channel_access": "no",
                        "send_rate": 0,
                        "burst": 0,
                        "mode_power_levels": {"o": 500, "xx": 1},
                        "ghost_template": "_irc_{server}",
                        "nick_template": "{nope}",
                        "edit_format": "{other}",
                        "reconnect": {"min_delay": -1},
                        "sasl_username": "u",
                        "password": "a\r\nQUIT",
                        "unknown": 1,
                        "channels": ["#ok", "bad"],
                    }
                },
            }
        )
    )
    for key in (
        "bogus",
        "servers.Bad_Name",
        "servers.Bad_Name.host",
        "servers.Bad_Name.port",
        "servers.Bad_Name.tls",
        "servers.Bad_Name.follow_channel_access",
        "servers.Bad_Name.send_rate",
        "servers.Bad_Name.burst",
        "servers.Bad_Name.mode_power_levels.o",
        "servers.Bad_Name.mode_power_levels.xx",
        "servers.Bad_Name.ghost_template",
        "servers.Bad_Name.nick_template",
        "servers.Bad_Name.edit_format",
        "servers.Bad_Name.reconnect.min_delay",
        "servers.Bad_Name.sasl_password",
        "servers.Bad_Name.password",
        "servers.Bad_Name.unknown",
        "servers.Bad_Name.channels",
    ):
        assert key in problems, key


def test_parse_fills_defaults():
    sc = parse({"servers": {"libera": {"host": "irc.example", "reconnect": {"concurrency": 3}}}})[
        "libera"
    ]
    assert sc.port == 6667 and sc.mode_power_levels == {"o": 50, "v": 1}
    assert sc.reconnect_concurrency == 3 and sc.nick_template == "{displayname}[m]"
    assert sc.reconnect_rate == 20  # starts per second by default
    assert sc.follow_channel_access  # a channel that keeps a user out keeps them out of its room
    off = {"host": "irc.example", "follow_channel_access": False}
    assert not parse({"servers": {"libera": off}})["libera"].follow_channel_access


def test_reconnect_rate_is_configurable_and_validated():
    servers = {"servers": {"l": {"host": "x", "reconnect": {"rate": 2.5}}}}
    assert validate(servers) == []
    assert parse(servers)["l"].reconnect_rate == 2.5
    assert parse({"servers": {"l": {"host": "x"}}})["l"].reconnect_concurrency == 100
    problems = dict(validate({"servers": {"l": {"host": "x", "reconnect": {"rate": 0}}}}))
    assert "servers.l.reconnect.rate" in problems


def test_read_batch_is_configurable_and_stays_below_the_stream_gap():
    defaults = parse({"servers": {"l": {"host": "x"}}})["l"]
    assert (defaults.read_batch, defaults.read_batch_max) == (0.05, 0.2)
    for ok in (0, 0.02, 0.09, 0.2):
        assert validate({"servers": {"l": {"host": "x", "read_batch": ok}}}) == [], ok
    for bad in (0.25, 1, -0.01, "fast", True):
        problems = dict(validate({"servers": {"l": {"host": "x", "read_batch": bad}}}))
        assert "servers.l.read_batch" in problems, bad
    for ok in (0.05, 0.1, 0.24):
        server = {"host": "x", "read_batch_max": ok}
        assert validate({"servers": {"l": server}}) == [], ok
    for bad in (0.25, 0.04, -1, "slow", True):  # 0.04: below read_batch (0.05)
        problems = dict(validate({"servers": {"l": {"host": "x", "read_batch_max": bad}}}))
        assert "servers.l.read_batch_max" in problems, bad
    # A read_batch above the default maximum raises the maximum with it.
    assert parse({"servers": {"l": {"host": "x", "read_batch": 0.22}}})["l"].read_batch_max == 0.22


def test_tls_ca_file_must_name_an_existing_file(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    server = {"host": "x", "tls": True, "tls_ca_file": str(ca)}
    assert validate({"servers": {"l": server}}) == []
    assert parse({"servers": {"l": server}})["l"].tls_ca_file == str(ca)
    assert parse({"servers": {"l": {"host": "x"}}})["l"].tls_ca_file is None
    for bad in (str(tmp_path / "missing.pem"), 5, "a\nb"):
        problems = dict(validate({"servers": {"l": {**server, "tls_ca_file": bad}}}))
        assert "servers.l.tls_ca_file" in problems, bad


def test_namespace_templates_cover_every_server_and_work_without_servers():
    assert IRCConnector.namespace_templates({"enabled": True}) == (
        ["_irc_{server}_{nick}"],
        ["_irc_{server}_{channel}"],
    )
    ghosts, aliases = IRCConnector.namespace_templates(
        {
            "servers": {
                "a": {"host": "x"},
                "b": {"host": "y", "ghost_template": "irc_{server}_{nick}"},
            }
        }
    )
    assert ghosts == ["_irc_a_{nick}", "irc_b_{nick}"]
    assert aliases == ["_irc_a_{channel}", "_irc_b_{channel}"]


def test_netsplit_detection_and_debounce():
    assert is_netsplit_quit("hub.example.net leaf.example.net")
    assert not is_netsplit_quit("Quit: bye")
    assert not is_netsplit_quit("a.b a.b")
    assert not is_netsplit_quit("hub.example.net leaf.example.net extra")

    async def run() -> list:
        out: list = []
        deb = NetsplitDebouncer(0.05, out.extend)
        deb.quit("#c", "bob", "a.net b.net")
        deb.quit("#c", "carol", "a.net b.net")
        assert deb.rejoined("#c", "bob")
        assert not deb.rejoined("#c", "dave")
        await asyncio.sleep(0.1)
        return out

    assert asyncio.run(run()) == [("#c", "carol", "a.net b.net")]


def test_secret_box_round_trip_and_tamper_detection():
    box = crypto.SecretBox(b"k" * 32)
    token = box.encrypt("hunter2", context="login1")
    assert token.startswith("v1:")  # AES-GCM, always
    assert not box.needs_upgrade(token)
    assert "hunter2" not in token
    assert box.decrypt(token, context="login1") == "hunter2"
    with pytest.raises(crypto.SecretError):
        box.decrypt(token, context="login2")
    with pytest.raises(crypto.SecretError):
        crypto.SecretBox(b"x" * 32).decrypt(token, context="login1")
    version, _, body = token.partition(":")
    tampered = version + ":" + body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    with pytest.raises(crypto.SecretError):
        box.decrypt(tampered, context="login1")


#: Written by the retired stdlib fallback (``v0``) with key bytes(range(32)), before its removal.
V0_PASSWORD = "v0:D1ECFLMb27dFB8PwQsPtExUFmXYymLxq6h0ysDoxAkaISgv1bwYjRGDtKSgTSsMAWuvg"
V0_KEYS = "v0:6VIbKrqdXCOyjudtn+ulIqt3ROGvMvGSaVOzvEWyEFv9c/Yo12dEqOx/eSRiA239cG3366tg3LrkFMzn0GA="


def old_v0_encrypt(key: bytes, plaintext: str, context: str, nonce: bytes) -> str:
    """The retired ``v0`` writer, verbatim but for the nonce (so tests can make values the old
    code would have written for a key they only know at run time)."""
    import hashlib
    import hmac

    enc = hmac.new(key, b"irc-secret-enc", hashlib.sha256).digest()
    mac = hmac.new(key, b"irc-secret-mac", hashlib.sha256).digest()
    data = plaintext.encode("utf-8")
    out = bytearray()
    counter = 0
    while len(out) < len(data):
        out += hmac.new(enc, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
        counter += 1
    body = bytes(a ^ b for a, b in zip(data, out[: len(data)], strict=True))
    tag = hmac.new(mac, nonce + body + context.encode(), hashlib.sha256).digest()
    return "v0:" + base64.b64encode(nonce + body + tag).decode()


def test_v0_values_of_the_old_fallback_are_read_for_migration_and_never_written():
    key = bytes(range(32))
    box = crypto.SecretBox(key)
    assert box.needs_upgrade(V0_PASSWORD)
    assert box.decrypt(V0_PASSWORD, context="login1") == "hunter2"
    assert box.decrypt(V0_KEYS, context="keys:login1") == '{"#secret": "k3y"}'
    # The copy of the old writer used by the end-to-end migration test is the old writer.
    nonce = base64.b64decode(V0_PASSWORD[3:])[:12]
    assert old_v0_encrypt(key, "hunter2", "login1", nonce) == V0_PASSWORD
    with pytest.raises(crypto.SecretError):
        box.decrypt(V0_PASSWORD, context="login2")
    with pytest.raises(crypto.SecretError):
        crypto.SecretBox(b"x" * 32).decrypt(V0_PASSWORD, context="login1")
    with pytest.raises(crypto.SecretError):
        box.decrypt("v0:AAAA", context="login1")
    with pytest.raises(crypto.SecretError):
        box.decrypt("v9:AAAA", context="login1")


def test_without_cryptography_a_secret_is_refused_with_what_to_install(monkeypatch):
    import sys

    monkeypatch.setattr(crypto, "AESGCM", ...)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(RuntimeError, match=r"bridgekit\[irc\]"):
        crypto.SecretBox(b"k" * 32).encrypt("hunter2")


def test_text_cleaning_and_corrections():
    assert clean_text("a\x00b\x01c\x02bold\x02\td") == "abc\x02bold\x02    d"
    assert one_line("kick\r\nQUIT :x\x00") == "kick QUIT :x"
    assert short_diff("i like teh cats", "i like the cats") == "the"
    assert short_diff(None, "new text") == "new text"
    assert short_diff("abc", "completely different words here") == (
        "completely different words here"
    )


def test_token_bucket_and_isupport():
    bucket = TokenBucket(rate=10, burst=2)
    assert bucket.wait_time() == 0
    bucket.take()
    bucket.take()
    assert 0 < bucket.wait_time() <= 0.1
    isup = ISupport()
    isup.load(["CASEMAPPING=ascii", "PREFIX=(qaohv)~&@%+", "CHANTYPES=#", "NICKLEN=16"])
    assert isup.casemapping == "ascii" and isup.prefix_modes == "qaohv"
    assert isup.prefix_chars == "~&@%+" and isup.nicklen == 16 and isup.chantypes == "#"


# -- the per-line path, indexes and start pacing (no servers needed) -------------------------


class _Bridge:
    """What IRCConnector/IRCClient use of the runtime, in memory."""

    domain = "example.org"

    def __init__(self) -> None:
        self.kv: dict[str, str | None] = {}

    async def get_kv(self, key: str) -> str | None:
        return self.kv.get(key)

    async def set_kv(self, key: str, value: str | None) -> None:
        self.kv[key] = value

    def ghost_mxid(self, remote_id: str) -> str:
        server, _, nick = remote_id.partition("/")
        return f"@_irc_{server}_{nick}:example.org"

    def report_state(self, *args, **kwargs) -> None:
        pass

    def secret_key(self, name: str) -> bytes:
        raise NotImplementedError


def _connector(**server) -> IRCConnector:
    return IRCConnector(_Bridge(), {"servers": {"local": {"host": "127.0.0.1", **server}}})


async def _registered(connector: IRCConnector, localpart: str, nick: str):
    """A loaded login whose connection registered as ``nick``, its events in ``.events``."""
    info = await connector.make_login(f"@{localpart}:example.org", "local", nick=nick)
    client = await connector.load_login(info)
    client.conn.nick = nick
    client.conn.registered = True
    client._on_registered()
    client.events = []
    client.emit = client.events.append
    return client


def _feed(client, *raw: str) -> None:
    from bridges.irc.lines import parse_line

    for line in raw:
        client.conn.handle_line(parse_line(line.encode()))


def _messages(client) -> list:
    from bridgekit.contract.events import RemoteMessage

    out = [e for e in client.events if isinstance(e, RemoteMessage)]
    client.events.clear()
    return out


def test_mentions_follow_channel_membership_with_irc_casemapping():
    async def run() -> None:
        connector = _connector()
        alice = await _registered(connector, "alice", "alice[m]")
        await _registered(connector, "zed", "zed[m]")  # a bridged user: mentions get its MXID
        _feed(
            alice,
            ":alice[m]!a@h JOIN #Chan",
            ":srv 353 alice[m] = #chan :alice[m] @Bob carol zed[m]",
            ":srv 366 alice[m] #chan :End of /NAMES list.",
        )
        _feed(alice, ":Bob!b@h PRIVMSG #chan :CAROL: hi ALICE{M}, zed[m]; bobby bob_ &amp;")
        (msg,) = _messages(alice)
        assert msg.content.mentions == ["local/carol", "@alice:example.org", "@zed:example.org"]
        assert msg.content.body == "CAROL: hi ALICE{M}, zed[m]; bobby bob_ &amp;"
        assert '<a href="https://matrix.to/#/@_irc_local_carol:example.org">CAROL</a>:' in (
            msg.content.html
        )
        assert "&amp;amp;" in msg.content.html
        # Nick change, part, quit and join keep the lookup current.
        _feed(
            alice,
            ":carol!c@h NICK Dave",
            ":Eve!e@h JOIN #chan",
            ":Bob!b@h QUIT :bye",
            ":zed[m]!z@h PART #chan",
            ":Eve!e@h PRIVMSG #chan :carol dave eve bob zed[m]",
        )
        (msg,) = _messages(alice)
        assert msg.content.mentions == ["local/dave", "local/eve"]
        assert alice.channels["#chan"].members.keys() == {"alice{m}", "dave", "eve"}
        # A private message may mention its sender, nobody else.
        _feed(alice, ":Dave!c@h PRIVMSG alice[m] :dave eve")
        (msg,) = _messages(alice)
        assert msg.content.mentions == ["local/dave"]
        await connector.stop()

    asyncio.run(run())


def test_only_the_listener_handles_a_channel_line_but_every_connection_sees_its_echo():
    async def run() -> None:
        connector = _connector()
        alice = await _registered(connector, "alice", "alice[m]")
        zed = await _registered(connector, "zed", "zed[m]")
        _feed(alice, ":alice[m]!a@h JOIN #chan")
        _feed(zed, ":zed[m]!z@h JOIN #chan")
        assert alice.is_listener("#chan") and not zed.is_listener("#chan")

        def not_called(*args, **kwargs):
            raise AssertionError("a non-listener built an event")

        zed.message_event = not_called
        echo = asyncio.get_running_loop().create_future()
        zed._echo["#chan"] = [("hello", echo)]
        _feed(zed, ":Bob!b@h PRIVMSG #chan :hi all", "@msgid=m1 :zed[m]!z@h PRIVMSG #chan :hello")
        assert echo.result() == "m1" and zed.events == []
        _feed(alice, ":Bob!b@h PRIVMSG #chan :hi all", ":zed[m]!z@h PRIVMSG #chan :hello")
        assert [m.content.body for m in _messages(alice)] == ["hi all"]  # zed's is on Matrix
        await connector.stop()

    asyncio.run(run())


def test_login_indexes_follow_nick_changes_disconnects_and_logouts():
    async def run() -> None:
        connector = _connector()
        alice = await _registered(connector, "alice", "alice[m]")
        assert connector.puppet_of_user("local", "@alice:example.org") is alice
        assert connector.puppet_of_user("other", "@alice:example.org") is None
        assert connector.puppet_by_remote_id("local/alice{m}") is alice
        _feed(alice, ":alice[m]!a@h NICK Alice2")
        assert connector.puppet_for("local", "alice2") is alice
        assert connector.puppet_for("local", "alice{m}") is None
        assert connector.puppet_by_remote_id("local/alice2") is alice
        assert connector.puppet_by_remote_id("local/alice{m}") is alice  # its login's nick
        alice._forget_presence()  # disconnected: no nick on the server any more
        assert connector.puppet_for("local", "alice2") is None
        assert connector.puppet_by_remote_id("local/alice{m}") is alice
        portal = PortalKey("local/#chan")
        assert await connector.auto_login("@alice:example.org", portal) is None
        await connector.logout(alice.login)
        assert connector.puppet_by_remote_id("local/alice{m}") is None
        assert connector.puppet_of_user("local", "@alice:example.org") is None
        login = await connector.auto_login("@alice:example.org", portal)
        assert login is not None and login.remote_id == "local/alice{m}"
        await connector.stop()

    asyncio.run(run())


def test_max_connections_is_logged_once_not_per_message(caplog):
    async def run() -> None:
        connector = _connector(max_connections=2)
        await _registered(connector, "a", "a")
        b = await _registered(connector, "b", "b")
        portal = PortalKey("local/#chan")
        with caplog.at_level("WARNING", logger="bridgekit.irc"):
            for i in range(5):
                assert await connector.auto_login(f"@new{i}:example.org", portal) is None
        assert sum("max_connections" in r.getMessage() for r in caplog.records) == 1
        await connector.logout(b.login)
        assert await connector.auto_login("@new0:example.org", portal) is not None
        await connector.stop()

    asyncio.run(run())


def test_start_pacer_spaces_reserved_starts():
    pacer = StartPacer(rate=10)
    delays = [pacer.delay() for _ in range(4)]
    assert delays[0] == 0
    for i, d in enumerate(delays):
        assert i * 0.1 - 0.01 <= d <= i * 0.1 + 0.01


@pytest.mark.parametrize("concurrency", [100, 2])
def test_connection_starts_are_paced_and_not_held_by_slow_registrations(concurrency):
    """A server that never completes registration: with a high enough cap, starts go on at
    the configured rate anyway; the cap still bounds registrations in flight."""

    async def run() -> list[float]:
        accepted: list[float] = []
        writers = []

        async def on_client(reader, writer) -> None:
            accepted.append(time.monotonic())
            writers.append(writer)

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sc = parse({"servers": {"t": {"host": "127.0.0.1", "port": port}}})["t"]
        sem, pacer = asyncio.Semaphore(concurrency), StartPacer(rate=20)
        conns = [
            IRCConnection(
                sc,
                f"n{i}",
                on_line=lambda msg: None,
                on_registered=lambda: None,
                on_state=lambda state, message: None,
                semaphore=sem,
                start_pacer=pacer,
            )
            for i in range(6)
        ]
        t0 = time.monotonic()
        for conn in conns:
            conn.start()
        await asyncio.sleep(0.6)
        started = [t - t0 for t in accepted]
        for conn in conns:
            await conn.stop()
        for writer in writers:
            writer.close()
        server.close()
        return started

    accepted = asyncio.run(run())
    if concurrency == 2:
        assert len(accepted) == 2  # the others wait for a registration slot
        return
    assert len(accepted) == 6  # none of them registered, yet all started
    gaps = [b - a for a, b in zip(accepted, accepted[1:], strict=False)]
    assert min(gaps) >= 0.04 and accepted[-1] >= 0.24  # 20 starts per second


class _Transport:
    """Records what the protocol asks of its socket."""

    def __init__(self) -> None:
        self.paused = self.resumed = 0

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        pass


def test_a_connection_whose_channels_another_bridges_rests_longer_in_a_stream():
    async def run() -> None:
        connector = _connector(read_batch=0.05, follower_read_batch=0.2)
        alice = await _registered(connector, "alice", "alice[m]")
        zed = await _registered(connector, "zed", "zed[m]")
        wire: dict[str, tuple[IRCProtocol, _Transport]] = {}
        for client, nick in ((alice, "alice[m]"), (zed, "zed[m]")):
            _feed(
                client,
                f":{nick}!u@h JOIN #chan",
                f":srv 353 {nick} = #chan :alice[m] zed[m] bob",
                f":srv 366 {nick} #chan :End of /NAMES list.",
            )
            proto, transport = IRCProtocol(client.conn), _Transport()
            proto.transport = transport
            client.conn.last_rx = time.monotonic() - 1  # quiet for a second
            wire[nick] = (proto, transport)
        assert connector.is_listener(alice, "#chan") and not connector.is_listener(zed, "#chan")
        line = b":bob!b@h PRIVMSG #chan :hi\r\n"
        # A lone line: both read it and read on.
        for proto, _ in wire.values():
            proto.data_received(line)
        assert [t.paused for _, t in wire.values()] == [0, 0]
        # A stream: the listener rests read_batch (50 ms), the follower 200 ms.
        for proto, _ in wire.values():
            proto.data_received(line)
        assert [t.paused for _, t in wire.values()] == [1, 1]
        await asyncio.sleep(0.1)
        assert [t.resumed for _, t in wire.values()] == [1, 0]
        await asyncio.sleep(0.15)
        assert [t.resumed for _, t in wire.values()] == [1, 1]
        assert [m.content.body for m in _messages(alice)] == ["hi", "hi"]
        assert _messages(zed) == []  # the follower's copies are not bridged again
        # The listener leaves: zed bridges the channel now, and rests only read_batch.
        _feed(alice, ":alice[m]!u@h PART #chan")
        assert connector.is_listener(zed, "#chan")
        proto, transport = wire["zed[m]"]
        proto.data_received(line)
        proto.data_received(line)
        assert transport.paused == 2
        await asyncio.sleep(0.1)
        assert transport.resumed == 2
        assert [m.content.body for m in _messages(zed)] == ["hi", "hi"]

    asyncio.run(run())


def test_follower_read_batch_is_configurable_and_bounded():
    assert parse({"servers": {"l": {"host": "x"}}})["l"].follower_read_batch == 0.25
    for ok in (0, 0.1, 2):
        assert validate({"servers": {"l": {"host": "x", "follower_read_batch": ok}}}) == []
    for bad in (-0.1, 2.5, "lazy", True):
        problems = dict(validate({"servers": {"l": {"host": "x", "follower_read_batch": bad}}}))
        assert "servers.l.follower_read_batch" in problems, bad


def test_a_stream_of_lines_is_read_in_batches_and_a_lone_line_at_once():
    async def run() -> None:
        client = await _registered(_connector(read_batch=0.05), "alice", "alice[m]")
        conn, transport = client.conn, _Transport()
        proto = IRCProtocol(conn)
        proto.transport = transport
        conn.last_rx = time.monotonic() - 1  # quiet for a second

        def say(text: str) -> None:
            proto.data_received(f":bob!b@h PRIVMSG alice[m] :{text}\r\n".encode())

        say("one")  # a lone line: read on
        assert transport.paused == 0
        say("two")  # the next read within 0.25 s: a stream, the socket rests 50 ms
        assert (transport.paused, transport.resumed, conn.read_pause) == (1, 0, 0.05)
        await asyncio.sleep(0.1)
        assert transport.resumed == 1
        # While our own line awaits its echo, reading never pauses.
        conn.awaiting = lambda: True
        say("three")
        assert transport.paused == 1
        conn.awaiting = lambda: False
        # Reads that are not a stream (0.25 s or more apart) do not pause either.
        conn.last_rx -= READ_STREAM_GAP
        say("four")
        assert transport.paused == 1
        # Every line was handled, in order, whatever the pauses.
        assert [m.content.body for m in _messages(client)] == ["one", "two", "three", "four"]

    asyncio.run(run())


def test_a_read_pause_doubles_while_each_read_finds_several_lines():
    """A flood: each pause gathered more than one line, so the next pause is twice as long,
    up to read_batch_max; a read that finds one line (people taking turns) goes back to
    read_batch, and so does the next stream after a quiet moment."""

    async def run() -> None:
        connector = _connector(read_batch=0.05, read_batch_max=0.2)
        client = await _registered(connector, "alice", "alice[m]")
        conn, transport = client.conn, _Transport()
        proto = IRCProtocol(conn)
        proto.transport = transport
        conn.last_rx = time.monotonic() - 1
        n = 0

        def read(lines: int) -> float:
            nonlocal n
            data = b""
            for _ in range(lines):
                n += 1
                data += f":bob!b@h PRIVMSG alice[m] :line {n}\r\n".encode()
            proto.data_received(data)
            return conn.read_pause

        assert read(3) == 0.0  # the first read of the stream is not a stream yet
        assert [read(3) for _ in range(4)] == [0.05, 0.1, 0.2, 0.2]
        assert read(1) == 0.05  # one line: back to the short pause
        assert read(2) == 0.1
        conn.last_rx -= READ_STREAM_GAP  # quiet: the next read is no stream
        assert read(5) == 0.0
        assert read(2) == 0.05
        assert transport.paused == 7
        assert [m.content.body for m in _messages(client)] == [f"line {i}" for i in range(1, n + 1)]
        # read_batch: 0 turns it off.
        off = await _registered(_connector(read_batch=0), "bob", "bob[m]")
        proto, transport = IRCProtocol(off.conn), _Transport()
        proto.transport = transport
        for text in ("a", "b", "c"):
            proto.data_received(f":carol!c@h PRIVMSG bob[m] :{text}\r\n".encode())
        assert transport.paused == 0

    asyncio.run(run())
