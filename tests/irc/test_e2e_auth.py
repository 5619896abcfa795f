"""Logging in to IRC: a server password (``PASS``) against a real InspIRCd whose connect
classes demand one, and SASL PLAIN through :class:`~tests.irc.sasl_proxy.SaslProxy` in front
of the real InspIRCd (``m_sasl`` needs a services server, which the tests do not have)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable

from bridgekit.contract.connector import BridgeStateEvent
from bridgekit.database.db import create_database
from bridges.irc.crypto import SecretBox
from bridges.irc.names import casefold
from tests.conftest import BridgeEnv
from tests.harness.inspircd import InspIRCd, IrcTestClient, require_inspircd
from tests.helpers import management_room
from tests.irc.e2e import (
    alias,
    connector,
    is_puppet_join,
    open_channel,
    privmsg_from,
    start_bridge,
)
from tests.irc.sasl_proxy import SaslAttempt, SaslProxy
from tests.irc.test_connector_units import old_v0_encrypt

SERVER_PASSWORD = "letmein-7"


async def eventually(check: Callable[[], object], timeout: float = 30.0) -> object:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)


async def test_the_server_password_is_sent_and_a_wrong_one_is_refused_with_the_servers_reason(
    make_bridge, bridge_env: BridgeEnv, uid, tmp_path
):
    require_inspircd()
    server = InspIRCd(tmp_path / "ircd", flood_control=False, client_password=SERVER_PASSWORD)
    await asyncio.to_thread(server.start)
    bob = IrcTestClient(server.host, server.port)
    try:
        # Without the password nobody gets in: the test's own client proves the class demands it.
        stranger = IrcTestClient(server.host, server.port)
        try:
            await stranger.connect(uid("stranger"))
            raise AssertionError("the ircd let a client in without its password")
        except ConnectionError as e:
            assert "ERROR" in str(e)
        finally:
            await stranger.close()
        channel = "#" + uid("chan")
        await bob.connect(uid("bob"), password=SERVER_PASSWORD)
        await bob.join(channel)
        # The right password: the puppet registers and speaks.
        bridge = await start_bridge(make_bridge, server, password=SERVER_PASSWORD)
        alice = await bridge_env.synapse.register_user(uid("alice"))
        async with alice:
            room_id, puppet = await open_channel(alice, channel, bob)
            await alice.send_text(room_id, "through the front door")
            await bob.wait_for(privmsg_from(puppet, "through the front door"), 15)
        await bridge.stop()
        # A wrong password: refused, and the login's state carries the server's own reason.
        bridge = await start_bridge(make_bridge, server, password="wrong")
        carol = await bridge_env.synapse.register_user(uid("carol"))
        async with carol:
            await carol.join(alias(channel))
            refused = await eventually(
                lambda: [
                    s.message
                    for s in bridge.login_states.values()
                    if s.state == BridgeStateEvent.TRANSIENT_DISCONNECT
                    and "registration did not complete" in s.message
                ]
            )
            # InspIRCd's words for a PASS that matches no connect class.
            assert "Access denied by configuration" in refused[0], refused
    finally:
        await bob.close()
        await asyncio.to_thread(server.stop)


async def test_the_relay_connection_logs_in_with_the_configured_sasl_account(
    make_bridge, ircd: InspIRCd, bridge_env: BridgeEnv, uid
):
    async with SaslProxy(ircd, {"relaybot": "relay-secret"}) as proxy:
        bridge = await start_bridge(
            make_bridge,
            ircd,
            host=proxy.host,
            port=proxy.port,
            relay_only=True,
            sasl_username="relaybot",
            sasl_password="relay-secret",
        )
        admin = await bridge_env.synapse.register_user(uid("admin"))
        channel = "#" + uid("chan")
        bob = IrcTestClient(ircd.host, ircd.port)
        await bob.connect(uid("bob"))
        await bob.join(channel)
        relay_nick = uid("Relay")
        async with admin:
            try:
                conv = await management_room(admin, bridge)
                assert "nick" in await conv.say("login irc")
                assert "password" in await conv.say(relay_nick)
                assert "Logged in" in await conv.say("-")
                await admin.join(alias(channel))
                await bob.wait_for(lambda m: m.command == "JOIN" and m.nick == relay_nick, 30)
                assert proxy.attempts == [SaslAttempt("relaybot", "relay-secret", True)]
            finally:
                await bob.close()


async def test_a_stored_password_logs_the_puppet_in_and_a_refused_one_is_reported(
    make_bridge, ircd: InspIRCd, bridge_env: BridgeEnv, uid
):
    async with SaslProxy(ircd, {}) as proxy:
        bridge = await start_bridge(make_bridge, ircd, host=proxy.host, port=proxy.port)
        alice = await bridge_env.synapse.register_user(uid("alice"))
        channel = "#" + uid("chan")
        bob = IrcTestClient(ircd.host, ircd.port)
        await bob.connect(uid("bob"))
        await bob.join(channel)
        async with alice:
            try:
                room_id, puppet = await open_channel(alice, channel, bob)
                assert proxy.attempts == []  # no password stored: no SASL at all
                proxy.accounts[puppet] = "pw-one"
                conv = await management_room(alice, bridge)
                assert "stored" in await conv.say("irc storepass pw-one")
                # `irc reconnect` uses the new password at once, as the reply promises.
                await conv.say("irc reconnect")
                await bob.wait_for(is_puppet_join(channel), 30)
                await eventually(lambda: proxy.attempts)
                assert proxy.attempts == [SaslAttempt(puppet, "pw-one", True)]
                # A password the network refuses: still connected, and the user is told.
                assert "stored" in await conv.say("irc storepass not-it")
                await conv.say("irc reconnect")
                await bob.wait_for(is_puppet_join(channel), 30)
                await eventually(lambda: len(proxy.attempts) == 2)
                assert proxy.attempts[1] == SaslAttempt(puppet, "not-it", False)
                notice = await alice.wait_for_event(
                    conv.room_id,
                    lambda e: "refused the SASL login" in e.get("content", {}).get("body", ""),
                    30,
                )
                assert puppet in notice["content"]["body"]
                assert "irc storepass" in notice["content"]["body"]
                await alice.send_text(room_id, "still here")
                await bob.wait_for(privmsg_from(puppet, "still here"), 15)
                assert len(connector(bridge).clients) == 1
            finally:
                await bob.close()


async def as_the_old_code_left_it(db_url: str, login_id: str, kv: dict[str, str]) -> None:
    """The IRC state of ``login_id`` as releases before typed metadata kept it: key/value rows
    (``irc:pass:<id>``...), nothing on the login's row, and the connector's schema at 0, so
    the next start runs its migration 001 over them."""
    db = create_database(db_url)
    await db.start()
    try:
        await db.execute("UPDATE irc_version SET version=0")
        await db.execute(
            "UPDATE user_login SET net_metadata='{}', net_metadata_v=0 WHERE id=$1", login_id
        )
        for key, value in kv.items():
            await db.execute("INSERT INTO kv (key, value) VALUES ($1, $2)", key, value)
    finally:
        await db.stop()


async def test_a_v0_password_and_channel_key_kept_by_the_old_code_are_migrated_and_used(
    make_bridge, ircd: InspIRCd, bridge_env: BridgeEnv, uid, db_url: str
):
    """Releases before the removal of the stdlib cipher wrote ``v0:`` values when
    ``cryptography`` was missing, and releases before typed metadata kept a login's password,
    channels and channel keys as key/value rows. Such a database, upgraded, still logs the
    user in (SASL) and rejoins the keyed channel; loading the password once rewrites it as
    ``v1:`` (AES-GCM) on the login's row, and the old rows are gone."""
    async with SaslProxy(ircd, {}) as proxy:
        bridge = await start_bridge(make_bridge, ircd, host=proxy.host, port=proxy.port)
        alice = await bridge_env.synapse.register_user(uid("alice"))
        channel = "#" + uid("chan")
        bob = IrcTestClient(ircd.host, ircd.port)
        await bob.connect(uid("bob"))
        await bob.join(channel)
        async with alice:
            try:
                room_id, puppet = await open_channel(alice, channel, bob)
                proxy.accounts[puppet] = "old-secret"
                irc = connector(bridge)
                (login_id,) = list(irc.clients)
                key = bridge.secret_key("irc-passwords")
                old = old_v0_encrypt(key, "old-secret", login_id, os.urandom(12))
                keys = SecretBox(key).encrypt(
                    json.dumps({casefold(channel): "sesame"}), context=f"keys:{login_id}"
                )
                await make_bridge.stop(bridge)
                await bob.wait_for(lambda m: m.command == "QUIT" and m.nick == puppet, 30)
                # Only with the key does the puppet get back in.
                await bob.send_line("MODE", channel, "+k", "sesame")
                await bob.wait_for(lambda m: m.command == "MODE" and m.param(1) == "+k", 10)
                await as_the_old_code_left_it(
                    db_url,
                    login_id,
                    {
                        f"irc:pass:{login_id}": old,
                        f"irc:keys:{login_id}": keys,
                        f"irc:channels:{login_id}": json.dumps([channel]),
                        f"irc:sent:{login_id}:marker": "kept",
                    },
                )
                # A restart migrates, then loads every login with its stored password and
                # rejoins its channels with their keys.
                bridge = await start_bridge(make_bridge, ircd, host=proxy.host, port=proxy.port)
                await bob.wait_for(is_puppet_join(channel), 30)
                await eventually(lambda: proxy.attempts)
                assert proxy.attempts == [SaslAttempt(puppet, "old-secret", True)]
                irc = connector(bridge)
                stored = (await irc.state.get(login_id)).password
                assert stored is not None and stored.startswith("v1:"), stored
                assert SecretBox(key).decrypt(stored, context=login_id) == "old-secret"
                assert await irc.load_channel_keys(login_id) == {casefold(channel): "sesame"}
                assert await bridge.get_kv(f"irc:pass:{login_id}") is None
                assert await irc.bridge.get_kv(f"irc:sent:{login_id}:marker") == "kept"
                await alice.send_text(room_id, "back in")
                await bob.wait_for(privmsg_from(puppet, "back in"), 15)
            finally:
                await bob.close()


def _identify_to(client: IrcTestClient) -> list[str]:
    return [
        m.trailing or ""
        for m in client.history
        if m.command == "PRIVMSG" and "IDENTIFY" in (m.trailing or "")
    ]


async def test_nickserv_identify_goes_only_to_services_the_server_vouches_for(
    make_bridge, ircd: InspIRCd, bridge_env: BridgeEnv, uid
):
    """Without SASL the stored password goes to NickServ by PRIVMSG, and on a network without
    services anyone can hold that nick. It is sent only when the holder's ``USERHOST`` matches
    the configured ``services_mask``; without a mask, or to an impostor, never."""
    channel = "#" + uid("chan")
    bob = IrcTestClient(ircd.host, ircd.port)
    await bob.connect(uid("bob"))
    await bob.join(channel)
    impostor = IrcTestClient(ircd.host, ircd.port)
    await impostor.connect("NickServ", user="evil")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bridge = await start_bridge(make_bridge, ircd)
    try:
        async with alice:
            _, puppet = await open_channel(alice, channel, bob)
            conv = await management_room(alice, bridge)

            async def see_refusal(reason: str) -> None:
                await bob.wait_for(is_puppet_join(channel), 30)
                # The old code wrote IDENTIFY right after registering, before the JOIN.
                assert _identify_to(impostor) == []
                notice = await alice.wait_for_event(
                    conv.room_id,
                    lambda e: (
                        "password was not sent" in e.get("content", {}).get("body", "")
                        and reason in e["content"]["body"]
                    ),
                    30,
                )
                assert "pw-ns-1" not in notice["content"]["body"]

            # No services_mask (the default): a user holding NickServ gets nothing.
            assert "stored" in await conv.say("irc storepass pw-ns-1")
            await conv.say("irc reconnect")
            await see_refusal("services_mask")
            assert _identify_to(impostor) == []
            # With a mask, an impostor whose user@host does not match gets nothing either (the
            # restarted bridge connects with the stored password and says why in the same room).
            await make_bridge.stop(bridge)
            mask = f"NickServ!svc@{ircd.host}"
            bridge = await start_bridge(make_bridge, ircd, services_mask=mask)
            await see_refusal("evil@")
            assert _identify_to(impostor) == []
            # The services' own connection (here: the user part the mask names) gets it.
            await impostor.close()
            services = IrcTestClient(ircd.host, ircd.port)
            await services.connect("NickServ", user="svc")
            try:
                await conv.say("irc reconnect")
                got = await services.wait_for(
                    lambda m: m.command == "PRIVMSG" and m.nick == puppet, 30
                )
                assert got.params[0] == "NickServ" and got.trailing == "IDENTIFY pw-ns-1"
            finally:
                await services.close()
    finally:
        await impostor.close()
        await bob.close()
