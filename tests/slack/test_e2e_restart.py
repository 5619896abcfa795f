"""A restart: the Slack logins are loaded again from the database and Socket Mode
reconnects; an envelope stored before the restart but never acknowledged comes again and
reaches Matrix once. Persistence: runs on both engines."""

from __future__ import annotations

import logging

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.helpers import management_room
from tests.slack.conftest import body_is, connector, login_app, open_channel, slack_networks
from tests.slack.test_e2e_bad_credentials import bad_notices
from tests.slack.test_e2e_login import leaks
from tests.slack.test_e2e_socket_mode import bodies, lose_acks


async def restart(make_bridge, bridge, fake):
    await make_bridge.stop(bridge)
    return await make_bridge(
        networks=slack_networks(fake), media={"allow": [f"127.0.0.1:{fake.port}"]}
    )


async def test_restart_reloads_the_login_and_reconnects(
    make_bridge, slack_bridge, slack_world, bridge_env, uid, caplog
):
    caplog.set_level(logging.DEBUG)
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_app(slack_bridge, admin, slack_world)
        login_id = client.login.id
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        connects = len([r for r in fake.requests if r.kind == "socket"])
        bridge = await restart(make_bridge, slack_bridge, fake)
        await eventually(
            lambda: (
                bridge.login_states.get(login_id)
                and bridge.login_states[login_id].state == BridgeStateEvent.CONNECTED
            ),
            timeout=30,
        )
        assert fake.connected_sockets == 1
        assert len([r for r in fake.requests if r.kind == "socket"]) == connects + 1
        reloaded = connector(bridge).clients[login_id]
        assert reloaded.meta.bot_token == slack_world.bot_token
        fake.post_user_message(general.id, slack_world.bob.id, "after the restart")
        await admin.wait_for_event(room_id, body_is("after the restart"), timeout=30)
        await admin.send_text(room_id, "matrix after the restart")
        await fake.wait_for(
            lambda r: (
                r.method == "chat.postMessage"
                and r.params.get("text") == "matrix after the restart"
            ),
            timeout=30,
        )
        assert leaks(caplog.records, slack_world.bot_token, slack_world.app_token) == []


async def test_envelope_stored_but_not_acked_before_a_restart_reaches_matrix_once(
    make_bridge, slack_bridge, slack_world, bridge_env, uid
):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        lost = lose_acks(client)  # the process dies between storing and acknowledging
        fake.post_user_message(general.id, slack_world.bob.id, "stored, never acked")
        env = fake.envelopes[-1]
        await admin.wait_for_event(room_id, body_is("stored, never acked"))
        await eventually(lambda: env.envelope_id in lost, timeout=10)
        bridge = await restart(make_bridge, slack_bridge, fake)
        # Slack sends it again on the new connection; the new process has no memory of the
        # event id, so the runtime's message-id dedupe must hold.
        await fake.wait_for_ack(env.envelope_id, timeout=30)
        assert env.sent == 2
        fake.post_user_message(general.id, slack_world.bob.id, "next one")
        await admin.wait_for_event(room_id, body_is("next one"), timeout=30)
        assert bodies(admin, room_id, "stored, never acked") == ["stored, never acked"]
        del bridge


async def test_a_dead_login_stays_dead_after_a_restart(
    make_bridge, slack_bridge, slack_world, bridge_env, uid
):
    """Restarted with a revoked token: one auth.test, BAD_CREDENTIALS, no Socket Mode."""
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_app(slack_bridge, admin, slack_world)
        login_id = client.login.id
        await make_bridge.stop(slack_bridge)
        fake.revoke(slack_world.bot_token, "account_inactive")
        before = len(fake.requests)
        bridge = await make_bridge(networks=slack_networks(fake))
        await eventually(
            lambda: (
                bridge.login_states.get(login_id)
                and bridge.login_states[login_id].state == BridgeStateEvent.BAD_CREDENTIALS
            ),
            timeout=30,
        )
        later = fake.requests[before:]
        assert [r.method for r in later if r.kind == "api"] == ["auth.test"]
        assert not [r for r in later if r.kind == "socket"]
        assert fake.connected_sockets == 0


def states_of(bridge, login_id):
    state = bridge.login_states.get(login_id)
    return state.state if state is not None else None


async def refuse_and_restart(make_bridge, bridge, world, admin):
    """``admin``'s app login has its bot token refused at connect (the notice arrives in the
    returned management room), then the bridge restarts. Returns (bridge, login id, conv,
    the requests index at the restart)."""
    fake = world.fake
    conv = await management_room(admin, bridge)
    client = await login_app(bridge, admin, world)
    fake.revoke(world.bot_token, "token_revoked")
    await client.disconnect()
    await client.connect()
    assert states_of(bridge, client.login.id) == BridgeStateEvent.BAD_CREDENTIALS
    assert "BAD_CREDENTIALS" in await conv.next_notice(timeout=20)
    await make_bridge.stop(bridge)
    before = len(fake.requests)
    bridge = await make_bridge(networks=slack_networks(fake))
    login_id = client.login.id
    await eventually(
        lambda: states_of(bridge, login_id) == BridgeStateEvent.BAD_CREDENTIALS, timeout=30
    )
    return bridge, login_id, conv, before


async def told_so_far(bridge, conv) -> list[str]:
    """The BAD_CREDENTIALS notices of ``conv`` once the bridge's notices so far are in (a
    marker sent after them arrived)."""
    marker = f"marker {len(conv.client.history(conv.room_id))}"
    await bridge.notify_user(conv.client.user_id, marker)
    await conv.client.wait_for_event(conv.room_id, body_is(marker), timeout=20)
    return bad_notices(conv)


async def test_a_refused_token_is_not_tried_nor_told_again_after_a_restart(
    make_bridge, slack_bridge, slack_world, bridge_env, uid
):
    """Slack refused the bot token before the restart: after it, the login is BAD_CREDENTIALS
    (with what to do) without a call to Slack and without a second notice; `logout` of it
    works and says so."""
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        bridge, login_id, conv, before = await refuse_and_restart(
            make_bridge, slack_bridge, slack_world, admin
        )
        state = bridge.login_states[login_id]
        assert "token_revoked" in state.message and "login slack app" in state.message
        assert state.error == "token_revoked"
        assert [r.method for r in fake.requests[before:] if r.kind == "api"] == []
        assert not [r for r in fake.requests[before:] if r.kind == "socket"]
        assert len(await told_so_far(bridge, conv)) == 1
        assert connector(bridge).clients[login_id].dead
        assert connector(bridge).app_clients(slack_world.team.id) == []

        reply = await conv.say(f"logout {login_id}")
        assert reply.startswith("Logged out of slack (Acme")
        assert login_id not in connector(bridge).clients
        assert [r for r in fake.requests[before:] if r.kind == "api"] == []
        bridge = await restart(make_bridge, bridge, fake)
        assert await bridge.store.logins(admin.user_id) == []


async def test_logging_in_again_clears_a_refusal_kept_across_a_restart(
    make_bridge, slack_bridge, slack_world, bridge_env, uid
):
    """The refusal holds until the user logs in again: the new login (same login id) connects,
    and still does after the next restart."""
    fake = slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        bridge, login_id, conv, _ = await refuse_and_restart(
            make_bridge, slack_bridge, slack_world, admin
        )
        client = await login_app(bridge, admin, slack_world)  # the fake issues new tokens
        assert client.login.id == login_id
        await eventually(
            lambda: states_of(bridge, login_id) == BridgeStateEvent.CONNECTED, timeout=30
        )
        bridge = await restart(make_bridge, bridge, fake)
        await eventually(
            lambda: states_of(bridge, login_id) == BridgeStateEvent.CONNECTED, timeout=30
        )
        assert not connector(bridge).clients[login_id].dead
        assert fake.connected_sockets == 1
        assert len(await told_so_far(bridge, conv)) == 1
