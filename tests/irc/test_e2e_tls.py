"""IRC over TLS: a real InspIRCd TLS listener (``ssl_gnutls``, a self-signed certificate made
by the test) and a real Synapse.

The bridge's puppets speak TLS end to end (the server's WHOIS says so), a stream of lines is
read in batches through the TLS transport without losing or reordering one, a certificate the
bridge does not trust is refused with the reason in the login's state, and all connections
to one server share one TLS context instead of each loading the CA store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bridgekit.contract.connector import BridgeStateEvent
from bridges.irc import client as irc_client
from bridges.irc import tls as irc_tls
from bridges.irc.protocol import IRCProtocol
from tests.conftest import BridgeEnv
from tests.harness.inspircd import InspIRCd, require_inspircd
from tests.irc.e2e import (
    alias,
    channel_scene,
    connector,
    irc_user,
    is_join_of,
    privmsg_from,
    start_bridge,
)

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

SECURE = "671"  # RPL_WHOISSECURE: "is using a secure connection"


@pytest.fixture(scope="module")
def tls_ircd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspIRCd]:
    """InspIRCd with a plain and a TLS client port, without flood control."""
    require_inspircd()
    server = InspIRCd(tmp_path_factory.mktemp("inspircd-tls"), flood_control=False, tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tls_settings(ircd: InspIRCd, **extra: object) -> dict[str, object]:
    assert ircd.tls_port is not None
    return {"port": ircd.tls_port, "tls": True, **extra}


def lines_from(user, room_id: str, sender: str) -> list[str]:
    """Every line ``sender`` said in the room (a merged event counts each of its lines)."""
    return [
        line
        for e in user.history(room_id)
        if e.get("type") == "m.room.message" and e["sender"] == sender
        for line in e["content"]["body"].split("\n")
    ]


async def test_puppets_speak_tls_and_a_stream_arrives_whole_and_in_order(
    make_bridge, tls_ircd: InspIRCd, bridge_env: BridgeEnv, uid, monkeypatch
):
    resumed: list[object] = []
    resume = IRCProtocol._resume

    def counting_resume(proto: IRCProtocol) -> None:
        resumed.append(proto)
        resume(proto)

    monkeypatch.setattr(IRCProtocol, "_resume", counting_resume)
    settings = tls_settings(tls_ircd, tls_ca_file=str(tls_ircd.cert_path), read_batch=0.05)
    async with channel_scene(make_bridge, tls_ircd, bridge_env, uid, **settings) as scene:
        alice, bob, channel, room_id, puppet = scene
        # The server itself says the puppet's connection is TLS.
        await bob.send_line("WHOIS", puppet)
        secure = await bob.wait_for(lambda m: m.command == SECURE and puppet in m.params, 10)
        assert "secure connection" in secure.trailing
        # Matrix -> IRC over TLS.
        await alice.send_text(room_id, "hello over TLS")
        await bob.wait_for(privmsg_from(puppet, "hello over TLS"), 15)
        # IRC -> Matrix: a paste written at once, so the bridge's connection reads a stream
        # and pauses its socket between batches (TLS records are decrypted as they come).
        sent = [f"tls line {i:02d}" for i in range(40)]
        for text in sent:
            await bob.privmsg(channel, text)
        await alice.wait_for_event(
            room_id, lambda e: sent[-1] in e.get("content", {}).get("body", ""), 30
        )
        ghost = next(
            e["sender"]
            for e in alice.history(room_id)
            if e.get("type") == "m.room.message" and "tls line" in e["content"]["body"]
        )
        assert lines_from(alice, room_id, ghost) == sent
        assert resumed, "the stream never paused the TLS transport: read_batch was not exercised"


async def test_an_untrusted_certificate_is_refused_and_the_state_says_why(
    make_bridge, tls_ircd: InspIRCd, bridge_env: BridgeEnv, uid
):
    # Verification on, the system's CA store: the self-signed server must be refused.
    bridge = await start_bridge(make_bridge, tls_ircd, **tls_settings(tls_ircd))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(tls_ircd, uid("bob"), channel)
    async with alice:
        try:
            await alice.join(alias(channel))
            login_id = None
            for _ in range(150):
                login_id = next(
                    (
                        lid
                        for lid, state in bridge.login_states.items()
                        if state.state == BridgeStateEvent.TRANSIENT_DISCONNECT
                        and "certificate verify failed" in (state.message or "")
                    ),
                    None,
                )
                if login_id is not None:
                    break
                await asyncio.sleep(0.1)
            states = {lid: (s.state, s.message) for lid, s in bridge.login_states.items()}
            assert login_id is not None, f"no refused login in {states}"
            # Nobody from the bridge ever got in.
            with pytest.raises(TimeoutError):
                await bob.wait_for(is_join_of(channel, exclude=bob.nick), 1.0)
        finally:
            await bob.close()


async def test_connections_to_one_server_share_one_tls_context(
    make_bridge, tls_ircd: InspIRCd, bridge_env: BridgeEnv, uid
):
    irc_tls.tls_context.cache_clear()
    settings = tls_settings(tls_ircd, tls_ca_file=str(tls_ircd.cert_path))
    bridge = await start_bridge(make_bridge, tls_ircd, **settings)
    channel = "#" + uid("chan")
    bob = await irc_user(tls_ircd, uid("bob"), channel)
    users = [await bridge_env.synapse.register_user(uid(f"user{i}")) for i in range(3)]
    try:
        for user in users:
            await user.join(alias(channel))
        for _ in range(3):
            await bob.wait_for(is_join_of(channel, exclude=bob.nick), 30)
        info = irc_tls.tls_context.cache_info()
        assert info.currsize == 1 and info.misses == 1 and info.hits >= 2, info
        assert len(connector(bridge)._puppets) >= 3
    finally:
        await bob.close()
        for user in users:
            await user.close()


async def test_tls_to_a_plain_port_fails_with_the_reason_instead_of_hanging(
    make_bridge, tls_ircd: InspIRCd, bridge_env: BridgeEnv, uid, monkeypatch
):
    # A common mistake: tls: true on the server's plain-text port, which answers a
    # ClientHello with silence (or, by chance, an error line in plain text).
    monkeypatch.setattr(irc_client, "TLS_HANDSHAKE_TIMEOUT", 1.0)
    bridge = await start_bridge(
        make_bridge, tls_ircd, tls=True, tls_ca_file=str(tls_ircd.cert_path)
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        await alice.join(alias("#" + uid("chan")))
        for _ in range(150):
            failed = [
                s.message
                for s in bridge.login_states.values()
                if s.state == BridgeStateEvent.TRANSIENT_DISCONNECT
                and "connection failed" in (s.message or "")
            ]
            if failed:
                break
            await asyncio.sleep(0.1)
        states = {lid: (s.state, s.message) for lid, s in bridge.login_states.items()}
        assert failed, f"no failed login in {states}"
        # Either our handshake deadline or OpenSSL's words for plain text where a TLS record
        # was expected.
        assert "TLS handshake within 1 s" in failed[0] or "SSL" in failed[0], failed
