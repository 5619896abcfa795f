"""The InspIRCd harness and raw test client work against a real server."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridges.irc.lines import Message
from tests.harness.inspircd import (
    InspIRCd,
    InspIRCdError,
    IrcTestClient,
    find_inspircd,
    require_inspircd,
)

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
ALL_CAPS = ["server-time", "message-tags", "echo-message"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspIRCd]:
    """One server shared by the read-only tests in this module (startup costs ~1 s)."""
    require_inspircd()
    ircd = InspIRCd(tmp_path_factory.mktemp("inspircd"))
    ircd.start()
    try:
        yield ircd
    finally:
        ircd.stop()


def is_privmsg(text: str) -> object:
    return lambda m: m.command == "PRIVMSG" and m.trailing == text


async def connect_all(server: InspIRCd, *specs: tuple[str, list[str]]) -> list[IrcTestClient]:
    """Register several clients concurrently (InspIRCd completes registration on a 1 s tick)."""
    clients = [server.client() for _ in specs]
    await asyncio.gather(
        *(
            client.connect(nick, caps=caps)
            for client, (nick, caps) in zip(clients, specs, strict=True)
        )
    )
    return clients


# --------------------------------------------------------------------------- no server needed


def test_config_uses_explicit_sendq_limits_and_no_dns(tmp_path: Path) -> None:
    config = InspIRCd(tmp_path, port=6999).config_text()
    assert 'hardsendq="' in config and 'softsendq="' in config and 'recvq="' in config
    assert not re.search(r"\ssendq=", config), "an unknown sendq= leaves a 16-byte limit"
    assert 'resolvehostnames="no"' in config
    assert '<dns server="127.0.0.1" timeout="1">' in config
    assert 'netbuffersize="65534"' in config
    assert 'port="6999"' in config


def test_config_never_loads_sasl(tmp_path: Path) -> None:
    modules = re.findall(r'<module name="([^"]+)">', InspIRCd(tmp_path).config_text())
    assert modules and not any("sasl" in name for name in modules)


def test_flood_control_off_disables_fakelag(tmp_path: Path) -> None:
    loose = InspIRCd(tmp_path, flood_control=False).config_text()
    stock = InspIRCd(tmp_path, flood_control=True).config_text()
    assert 'fakelag="no"' in loose and 'threshold="1000000"' in loose
    assert 'fakelag="yes"' in stock and 'threshold="10"' in stock


def test_loopback_allows_many_connections(tmp_path: Path) -> None:
    config = InspIRCd(tmp_path).config_text()
    assert 'localmax="20000"' in config and 'globalmax="20000"' in config
    assert 'maxconnwarn="no"' in config


def test_require_inspircd_skips_when_binary_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGEKIT_INSPIRCD", "/nonexistent/inspircd")
    assert find_inspircd() is None
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y inspircd"):
        require_inspircd()


# --------------------------------------------------------------------------- real server


async def test_two_clients_exchange_a_channel_message(server: InspIRCd) -> None:
    alice, bob = await connect_all(server, ("h_alice", []), ("h_bob", []))
    try:
        await alice.join("#harness")
        await bob.join("#HARNESS")  # rfc1459 casemapping: same channel
        await alice.privmsg("#harness", "hello bob")
        received = await bob.wait_for(is_privmsg("hello bob"))
        assert received.nick == "h_alice"
        assert received.params == ["#harness", "hello bob"]
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_server_time_tag_is_present_only_when_requested(server: InspIRCd) -> None:
    sender, with_caps, without_caps = await connect_all(
        server, ("t_sender", []), ("t_caps", []), ("t_plain", [])
    )
    try:
        assert await with_caps.request_caps(ALL_CAPS) == set(ALL_CAPS)
        for client in (sender, with_caps, without_caps):
            await client.join("#time")
        await sender.privmsg("#time", "tick")
        tagged = await with_caps.wait_for(is_privmsg("tick"))
        untagged = await without_caps.wait_for(is_privmsg("tick"))
        assert ISO_TIME.fullmatch(tagged.tags["time"])
        assert "msgid" in tagged.tags
        assert "time" not in untagged.tags
    finally:
        await asyncio.gather(sender.close(), with_caps.close(), without_caps.close())


async def test_caps_negotiated_during_registration_enable_echo(server: InspIRCd) -> None:
    (client,) = await connect_all(server, ("e_echo", ALL_CAPS))
    try:
        assert client.caps == set(ALL_CAPS)
        await client.join("#echo")
        await client.privmsg("#echo", "is anybody there")
        echoed = await client.wait_for(is_privmsg("is anybody there"))
        assert echoed.nick == "e_echo" and "time" in echoed.tags
    finally:
        await client.close()


async def test_unknown_cap_request_is_refused(server: InspIRCd) -> None:
    (client,) = await connect_all(server, ("n_nak", []))
    try:
        assert await client.request_caps(["server-time", "bridgekit.test/nonsense"]) == set()
    finally:
        await client.close()


async def test_wait_for_times_out_with_recent_messages(server: InspIRCd) -> None:
    (client,) = await connect_all(server, ("w_wait", []))
    try:
        with pytest.raises(TimeoutError, match=r"within 0\.2s; last: .*376"):
            await client.wait_for(lambda m: m.command == "NEVER", timeout=0.2)
    finally:
        await client.close()


async def test_raw_crlf_injection_is_two_lines_to_the_server(server: InspIRCd) -> None:
    """Shows what build_line prevents: raw CRLF really does start a second command."""
    watcher, sender = await connect_all(server, ("i_watch", []), ("i_send", []))
    try:
        await watcher.join("#inject")
        await sender.join("#inject")
        await sender.send_raw(b"PRIVMSG #inject :hi\r\nPART #inject :injected\r\n")
        part: Message = await watcher.wait_for(lambda m: m.command == "PART")
        assert part.nick == "i_send" and part.trailing == "injected"
        with pytest.raises(ValueError):
            await sender.send("PRIVMSG #inject :a\r\nQUIT")
    finally:
        await asyncio.gather(watcher.close(), sender.close())


# --------------------------------------------------------------------------- lifecycle


async def test_restart_keeps_the_port(tmp_path: Path) -> None:
    require_inspircd()
    ircd = InspIRCd(tmp_path / "ircd")
    try:
        await asyncio.to_thread(ircd.start)
        port = ircd.port
        await asyncio.to_thread(ircd.restart)
        assert ircd.port == port and ircd.running
        async with IrcTestClient.connected(ircd.host, port, "r_after") as client:
            assert client.nick == "r_after"
    finally:
        ircd.stop()
    assert not ircd.running
    ircd.stop()  # idempotent


def test_start_failure_includes_the_server_output(tmp_path: Path) -> None:
    require_inspircd()
    ircd = InspIRCd(tmp_path / "bad", extra_config='<module name="bridgekit_no_such_module">')
    with pytest.raises(InspIRCdError, match="m_bridgekit_no_such_module"):
        ircd.start()
    assert not ircd.running


def test_start_fails_fast_when_the_port_is_taken(tmp_path: Path) -> None:
    require_inspircd()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ircd = InspIRCd(tmp_path / "taken", port=squatter.getsockname()[1], start_timeout=15)
        with pytest.raises(InspIRCdError, match="could not bind"):
            ircd.start()
    assert not ircd.running


def test_explicit_port_is_used(tmp_path: Path) -> None:
    require_inspircd()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with InspIRCd(tmp_path / "fixed", port=port) as ircd:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert ircd.address == ("127.0.0.1", port)


async def test_flood_control_off_delivers_a_burst_promptly(tmp_path: Path) -> None:
    require_inspircd()
    ircd = InspIRCd(tmp_path / "noflood", flood_control=False)
    await asyncio.to_thread(ircd.start)
    try:
        sender, receiver = await connect_all(ircd, ("f_send", []), ("f_recv", []))
        try:
            await sender.join("#burst")
            await receiver.join("#burst")
            burst = b"".join(f"PRIVMSG #burst :m{i}\r\n".encode() for i in range(300))
            await sender.send_raw(burst)
            # With stock limits (1 line/s after 10) this would take ~5 minutes.
            await receiver.wait_for(is_privmsg("m299"), timeout=10)
        finally:
            await asyncio.gather(sender.close(), receiver.close())
    finally:
        ircd.stop()
