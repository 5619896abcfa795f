"""Restarts: of Prosody (the component reconnects, nothing lost, presences reported afresh)
and of the bridge (MAM)."""

from __future__ import annotations

import asyncio
import json

from bridgekit.contract.connector import BridgeStateEvent
from bridgekit.database.db import create_database
from bridgekit.matrix.router import MatrixRouter
from bridges.xmpp.login import puppet_login
from tests.conftest import SERVER_NAME, eventually
from tests.harness.prosody import Prosody
from tests.xmpp.conftest import alias, body_is, ghost, xmpp_networks
from tests.xmpp.helpers import matrix_presence


async def _portal(bridge, server: Prosody, bridge_env, xmpp_clients, uid):
    bob = await xmpp_clients(server, uid("bob"))
    room = f"{uid('room')}@{server.muc}"
    await bob.join(room, "Bob")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    room_id = await alice.join(alias(room))
    await bob.wait_for(
        lambda p: p["from"].bare == room and p["from"].resource not in ("Bob", ""), presences=True
    )
    return bob, alice, room, room_id


def bodies(client, room_id: str, prefix: str) -> list[str]:
    return [
        e["content"]["body"]
        for e in client.history(room_id)
        if e.get("type") == "m.room.message" and e["content"].get("body", "").startswith(prefix)
    ]


async def test_prosody_restart(make_bridge, own_prosody: Prosody, bridge_env, xmpp_clients, uid):
    bridge = await make_bridge(networks=xmpp_networks(own_prosody))
    connector = bridge.connectors["xmpp"]
    assert await connector.component.wait_online(15)
    bob, alice, room, room_id = await _portal(bridge, own_prosody, bridge_env, xmpp_clients, uid)
    async with alice:
        login_id = next(iter(connector.clients))
        # Bob's presence is kept alive on Matrix (bridge.presence_refresh) while he is there...
        await eventually(lambda: ghost(f"{room}/Bob") in bridge.presence)
        own_prosody.stop()
        await eventually(lambda: not connector.component.online.is_set(), timeout=20)
        await eventually(
            lambda: bridge.login_states[login_id].state == BridgeStateEvent.TRANSIENT_DISCONNECT
        )
        # ...and no longer once the network is unreachable: nobody can say he is still there.
        assert len(bridge.presence) == 0
        expected = [f"q{i}" for i in range(5)]
        for body in expected:  # Matrix messages while the XMPP server is down
            await alice.send_text(room_id, body)
        await asyncio.sleep(1)
        own_prosody.start()
        await eventually(
            lambda: bridge.login_states[login_id].state == BridgeStateEvent.CONNECTED, timeout=30
        )
        bob2 = await xmpp_clients(own_prosody, bob.jid.split("@")[0] + "x")
        await bob2.join(room, "Bob2", history=20)
        await eventually(
            lambda: len([b for b in bob2.bodies(room) if b.startswith("q")]) >= 5, timeout=30
        )
        await asyncio.sleep(0.5)
        assert [b for b in bob2.bodies(room) if b.startswith("q")] == expected
        # After the reconnect the room's occupants are reported afresh: Bob2, who joined
        # since, is kept and reads online; Bob, whose client the restart cut off, is not kept.
        bob2_ghost = ghost(f"{room}/Bob2")
        await eventually(lambda: bob2_ghost in bridge.presence)
        assert (await matrix_presence(alice, bob2_ghost)).get("presence") == "online"
        assert ghost(f"{room}/Bob") not in bridge.presence
        bob2.say(room, "after the restart")
        await alice.wait_for_event(room_id, body_is("after the restart"), timeout=20)


async def test_bridge_restart_catches_up_from_archive(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    bridge = await make_bridge(networks=xmpp_networks(prosody))
    assert await bridge.connectors["xmpp"].component.wait_online(15)
    bob, alice, room, room_id = await _portal(bridge, prosody, bridge_env, xmpp_clients, uid)
    async with alice:
        bob.say(room, "r-before")
        await alice.wait_for_event(room_id, body_is("r-before"))
        await make_bridge.stop(bridge)
        expected = [f"r-during-{i}" for i in range(4)]
        for body in expected:  # said while the bridge is away: in the room's archive
            bob.say(room, body)
        await asyncio.sleep(0.5)
        bridge = await make_bridge(networks=xmpp_networks(prosody))
        await eventually(
            lambda: len(bodies(alice, room_id, "r-during")) >= len(expected), timeout=40
        )
        await asyncio.sleep(1)
        assert bodies(alice, room_id, "r-during") == expected
        await alice.send_text(room_id, "r-after from matrix")
        await bob.wait_for(lambda m: m["body"] == "r-after from matrix", timeout=20)


async def test_wrong_secret_is_bad_credentials_and_retried_slowly(make_bridge, prosody: Prosody):
    networks = xmpp_networks(prosody, auth_retry_delay=3)
    networks["xmpp"]["component_secret"] = "not the secret"
    bridge = await make_bridge(networks=networks)
    connector = bridge.connectors["xmpp"]
    component = connector.component
    user = f"@secretless:{SERVER_NAME}"
    await bridge.commands.get_or_create_user(user)
    login = puppet_login(connector, user)
    await bridge.add_login(login)
    await eventually(lambda: "not-authorized" in component.last_error, timeout=15)
    # The user is told their login cannot work as it is: not a passing disconnect.
    await eventually(
        lambda: bridge.login_states[login.id].state == BridgeStateEvent.BAD_CREDENTIALS
    )
    assert "component_secret" in bridge.login_states[login.id].message
    # Retried, but once per auth_retry_delay, not in a tight backoff loop.
    failures = component.failures
    await asyncio.sleep(2.5)
    assert component.failures <= failures + 1
    await eventually(lambda: component.failures > failures, timeout=15)  # still trying
    assert not component.online.is_set()
    assert bridge.login_states[login.id].state == BridgeStateEvent.BAD_CREDENTIALS


async def test_live_messages_wait_for_the_archive_catch_up(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid
):
    """What the room says while the bridge catches up comes after what it said before."""
    bridge = await make_bridge(networks=xmpp_networks(prosody))
    assert await bridge.connectors["xmpp"].component.wait_online(15)
    bob, alice, room, room_id = await _portal(bridge, prosody, bridge_env, xmpp_clients, uid)
    async with alice:
        bob.say(room, "o-before")
        await alice.wait_for_event(room_id, body_is("o-before"))
        await make_bridge.stop(bridge)
        during = [f"o-during-{i}" for i in range(10)]
        for body in during:  # in the room's archive only
            bob.say(room, body)
        await asyncio.sleep(0.5)
        seen = len(bob.presences)
        bridge = await make_bridge(networks=xmpp_networks(prosody))
        # The moment the bridge's occupant is back in the room, Bob keeps talking: these
        # arrive live while the archive query for the room is still running.
        await bob.wait_for(
            lambda p: (
                any(p is q for q in bob.presences[seen:])
                and p["from"].bare == room
                and p["from"].resource != "Bob"
                and p["type"] != "unavailable"
            ),
            presences=True,
        )
        live = [f"o-live-{i}" for i in range(6)]
        for body in live:
            bob.say(room, body)
        expected = during + live
        await eventually(lambda: len(bodies(alice, room_id, "o-")) >= 1 + len(expected), timeout=40)
        await asyncio.sleep(1.5)
        assert bodies(alice, room_id, "o-") == ["o-before", *expected]


async def test_rooms_kept_by_the_old_code_are_rejoined_after_the_upgrade(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid, db_url: str
):
    """Releases before typed metadata kept the MUCs a login is in as a key/value row
    (``xmpp:rooms:<login id>``). Such a database, upgraded (the connector's migration 001),
    rejoins them at start, before anyone on Matrix says anything."""
    bridge = await make_bridge(networks=xmpp_networks(prosody))
    connector = bridge.connectors["xmpp"]
    assert await connector.component.wait_online(15)
    bob, alice, room, room_id = await _portal(bridge, prosody, bridge_env, xmpp_clients, uid)
    async with alice:
        (login_id,) = [i for i, c in connector.clients.items() if room in c.rooms]
        await eventually(lambda: connector.clients[login_id].rooms[room])  # joined, nick known
        rooms = dict(connector.clients[login_id].rooms)
        nick = rooms[room]
        await make_bridge.stop(bridge)
        bob.presences.clear()  # from here on: what the restarted bridge does
        db = create_database(db_url)
        await db.start()
        try:  # as the old code left it: a kv row, nothing on the login's row, schema 0
            await db.execute("UPDATE xmpp_version SET version=0")
            await db.execute("UPDATE user_login SET net_metadata='{}', net_metadata_v=0")
            await db.execute(
                "INSERT INTO kv (key, value) VALUES ($1, $2)",
                f"xmpp:rooms:{login_id}",
                json.dumps(rooms),
            )
        finally:
            await db.stop()
        bridge = await make_bridge(networks=xmpp_networks(prosody))
        await bob.wait_for(
            lambda p: (
                p["from"].bare == room and p["from"].resource == nick and p["type"] != "unavailable"
            ),
            timeout=30,
            presences=True,
        )
        assert await bridge.connectors["xmpp"].idmap.rooms(login_id) == rooms
        assert await bridge.store.get_kv(f"xmpp:rooms:{login_id}") is None


async def test_a_stop_during_a_join_is_quick_and_the_join_is_replayed(
    make_bridge, prosody: Prosody, bridge_env, xmpp_clients, uid, monkeypatch
):
    """A Matrix user's join still waiting for the room's answer when the bridge stops: the
    answer will not be handled any more, so the stop does not wait for it (it gave such work
    its whole grace period, 10 s), and the join event, cut short, is replayed at the next
    start: her occupant is in the room then."""
    bridge = await make_bridge(networks=xmpp_networks(prosody))
    connector = bridge.connectors["xmpp"]
    assert await connector.component.wait_online(15)
    bob, alice, room, room_id = await _portal(bridge, prosody, bridge_env, xmpp_clients, uid)
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with alice, carol:
        connector.muc._send_join = lambda *args: None  # the room does not answer (yet)
        await carol.join(room_id)
        await eventually(lambda: bool(connector.muc.rooms[room].joins), timeout=20)
        replayed: list[dict] = []
        handle = MatrixRouter.handle_event

        async def recording(self: MatrixRouter, evt: dict, replay: bool = False) -> None:
            if replay:
                replayed.append(evt)
            await handle(self, evt, replay)

        monkeypatch.setattr(MatrixRouter, "handle_event", recording)
        started = asyncio.get_running_loop().time()
        await make_bridge.stop(bridge)
        assert asyncio.get_running_loop().time() - started < 5
        await make_bridge(networks=xmpp_networks(prosody))
        nick = carol.user_id[1:].split(":")[0]
        await bob.wait_for(
            lambda p: p["from"].bare == room and p["from"].resource == nick,
            presences=True,
            timeout=30,
        )
        assert any(
            e.get("type") == "m.room.member" and e.get("state_key") == carol.user_id
            for e in replayed
        )
