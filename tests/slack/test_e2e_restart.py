"""A restart: the Slack logins are loaded again from the database and Socket Mode
reconnects; an envelope stored before the restart but never acknowledged comes again and
reaches Matrix once. Persistence: runs on both engines."""

from __future__ import annotations

import logging

from bridgekit.contract.connector import BridgeStateEvent
from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, login_app, open_channel, slack_networks
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
