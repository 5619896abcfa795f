"""Socket Mode delivery: an envelope is acknowledged only once stored, a redelivery (after a
reconnect, a ``disconnect`` refresh or Slack's ack timeout) reaches Matrix once, malformed
envelopes are logged and skipped while later events still flow, and a burst stays in order."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, login_app, open_channel

pytestmark = pytest.mark.engine_independent


def bodies(user, room_id: str, prefix: str) -> list[str]:
    return [
        e["content"]["body"]
        for e in user.history(room_id)
        if e.get("type") == "m.room.message"
        and e.get("content", {}).get("body", "").startswith(prefix)
    ]


def lose_acks(client, envelopes: set[str] | None = None) -> list[str]:
    """The bridge's acks of ``envelopes`` (all, if None) are lost on the way (as in a socket
    dropped right after the event was stored). Returns the list of lost envelope ids."""
    lost: list[str] = []
    socket = client.socket
    real = socket._ack

    async def ack(envelope_id: str) -> None:
        if envelopes is None or envelope_id in envelopes:
            lost.append(envelope_id)
            return
        await real(envelope_id)

    socket._ack = ack
    return lost


def count_queued(bridge, monkeypatch) -> list[object]:
    """Every remote event the connector queues, in a list."""
    api = connector(bridge).bridge
    real = api.queue_remote_event
    queued: list[object] = []

    async def spy(login_id, event):
        queued.append(event)
        await real(login_id, event)

    monkeypatch.setattr(api, "queue_remote_event", spy)
    return queued


@pytest.mark.parametrize("how", ["refresh", "dropped", "timeout"])
async def test_redelivery_reaches_matrix_once(
    slack_bridge, slack_world, bridge_env, uid, monkeypatch, how
):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        queued = count_queued(slack_bridge, monkeypatch)
        lost = lose_acks(client)
        fake.post_user_message(general.id, slack_world.bob.id, "said once")
        env = fake.envelopes[-1]
        await admin.wait_for_event(room_id, body_is("said once"))
        await eventually(lambda: env.envelope_id in lost, timeout=10)
        client.socket._ack = type(client.socket)._ack.__get__(client.socket)
        connects = len([r for r in fake.requests if r.kind == "socket"])
        if how == "refresh":
            assert await fake.request_refresh() == 1
        elif how == "dropped":
            assert await fake.drop_sockets() == 1
        else:
            assert fake.redeliver_unacked() == 1
        await fake.wait_for_ack(env.envelope_id, timeout=30)
        assert env.sent == 2  # it came again, with retry_attempt 1
        if how != "timeout":
            assert len([r for r in fake.requests if r.kind == "socket"]) > connects
        fake.post_user_message(general.id, slack_world.bob.id, "said after")
        await admin.wait_for_event(room_id, body_is("said after"))
        assert bodies(admin, room_id, "said once") == ["said once"]
        # Recognised by its event id: the redelivery was not even queued again.
        said = [
            e for e in queued if getattr(getattr(e, "content", None), "body", "") == "said once"
        ]
        assert len(said) == 1


async def test_envelope_not_stored_is_not_acked_and_comes_again(
    slack_bridge, slack_world, bridge_env, uid, monkeypatch
):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        api = connector(slack_bridge).bridge
        real = api.queue_remote_event
        failures: list[str] = []

        async def store_down_once(login_id, event):
            if not failures:
                failures.append(str(event))
                raise RuntimeError("the database is away")
            await real(login_id, event)

        monkeypatch.setattr(api, "queue_remote_event", store_down_once)
        fake.ack_timeout = 2.0  # Slack resends an envelope it has no ack for
        fake.post_user_message(general.id, slack_world.bob.id, "stored late")
        env = fake.envelopes[-1]
        await eventually(lambda: failures, timeout=10)
        await asyncio.sleep(1)
        assert env.envelope_id not in fake.acks
        await admin.wait_for_event(room_id, body_is("stored late"), timeout=30)
        await fake.wait_for_ack(env.envelope_id, timeout=10)
        assert env.sent == 2
        assert bodies(admin, room_id, "stored late") == ["stored late"]


def malformed_frames(fake, team: str, channel: str, user: str) -> list[dict | str]:
    good = fake.event_payload(
        team,
        {
            "type": "message",
            "channel": channel,
            "user": user,
            "ts": "1700000000.000100",
            "text": "x",
        },
    )

    def env(n: int, payload) -> dict:
        return {
            "envelope_id": f"bad-{n}",
            "type": "events_api",
            "payload": payload,
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }

    def with_event(**event) -> dict:
        return {
            **good,
            "event_id": f"EvBAD{len(event)}{sorted(event)[0]}".upper(),
            "event": {**good["event"], **event},
        }

    return [
        "{not json",
        "[1, 2, 3]",
        '"just a string"',
        {"type": "events_api"},  # no envelope id
        {"envelope_id": 5, "type": "events_api", "payload": {}},
        env(1, "a string payload"),
        env(2, [1, 2]),
        env(3, {}),
        env(4, {**good, "event": "not an object"}),
        env(5, {**good, "event": {"channel": channel}}),
        env(6, with_event(channel=5)),
        env(7, with_event(ts="not a ts")),
        env(8, with_event(user="../../admin")),
        env(9, with_event(text={"html": "<b>"})),
        env(10, with_event(ts=None)),
        env(11, {**good, "team_id": ["T1"]}),
        env(12, with_event(message="not an object", subtype="message_changed")),
        env(13, with_event(subtype=["x"])),
        {"envelope_id": "bad-14", "type": "events_api"},  # no payload
        {"envelope_id": "bad-15", "type": "slash_commands", "payload": {"command": "/x"}},
        json.dumps(env(16, {**good, "event_id": {"x": 1}})),
    ]


async def test_malformed_envelopes_are_skipped_and_later_events_flow(
    slack_bridge, slack_world, bridge_env, uid, caplog
):
    caplog.set_level(logging.WARNING, "bridgekit.slack")
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, bob)
        connects = len([r for r in fake.requests if r.kind == "socket"])
        frames = malformed_frames(fake, slack_world.team.id, general.id, bob.id)
        for frame in frames:
            assert fake.send_frame(frame)
        fake.post_user_message(general.id, bob.id, "still flowing")
        await admin.wait_for_event(room_id, body_is("still flowing"), timeout=20)
        # Each envelope that has an id is acknowledged (Slack would resend it otherwise).
        for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16):
            await fake.wait_for_ack(f"bad-{n}", timeout=10)
        # Same socket all along: nothing crashed or reconnected.
        assert len([r for r in fake.requests if r.kind == "socket"]) == connects
        assert fake.connected_sockets == 1 and client.connected
        skipped = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert len(skipped) >= 12
        assert [b for b in bodies(admin, room_id, "") if b == "x"] == []


async def test_a_burst_from_slack_arrives_in_order(slack_bridge, slack_world, bridge_env, uid):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        expected = [f"in order {i}" for i in range(30)]
        speakers = [slack_world.bob, slack_world.alice]
        for i, text in enumerate(expected):
            fake.post_user_message(general.id, speakers[i % 2].id, text)
        await eventually(lambda: len(bodies(admin, room_id, "in order")) >= 30, timeout=60)
        assert bodies(admin, room_id, "in order") == expected


async def test_a_lost_connection_is_a_transient_disconnect_until_slack_says_hello(
    slack_bridge, slack_world, bridge_env, uid, monkeypatch
):
    """While slack-sdk reconnects (here apps.connections.open fails twice), the login is
    TRANSIENT_DISCONNECT; the next hello makes it CONNECTED (and the runtime catches up)."""
    from bridgekit.contract.connector import BridgeStateEvent

    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        state = slack_bridge.login_states[client.login.id]
        seen: list[BridgeStateEvent] = []
        report = connector(slack_bridge).bridge.report_state

        def spy(login_id, st, message="", error=""):
            seen.append(st)
            report(login_id, st, message, error)

        monkeypatch.setattr(connector(slack_bridge).bridge, "report_state", spy)
        fake.fail("apps.connections.open", "internal_error", times=1)
        assert await fake.drop_sockets() == 1
        await eventually(lambda: BridgeStateEvent.TRANSIENT_DISCONNECT in seen, timeout=20)
        await eventually(lambda: state.state == BridgeStateEvent.CONNECTED, timeout=30)
        assert seen[-2:] == [BridgeStateEvent.TRANSIENT_DISCONNECT, BridgeStateEvent.CONNECTED]
        assert not client.dead and fake.connected_sockets == 1
        fake.post_user_message(general.id, slack_world.bob.id, "back again")
        await admin.wait_for_event(room_id, body_is("back again"), timeout=20)


async def test_a_failed_handshake_gets_a_new_url(slack_bridge, slack_world, bridge_env, uid):
    """slack-sdk retries a failed websocket handshake with the same URL forever; a Socket Mode
    URL is good for one connection, so each retry must ask apps.connections.open again."""
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        opened = len(fake.calls("apps.connections.open"))
        before = [r for r in fake.requests if r.kind == "socket"]
        fake.refuse_sockets(1)
        assert await fake.drop_sockets() == 1

        def handshakes() -> list[int | None]:
            return [r.status for r in fake.requests if r.kind == "socket"][len(before) :]

        await eventually(lambda: handshakes() == [503, 101], timeout=40)
        assert len(fake.calls("apps.connections.open")) == opened + 2
        fake.post_user_message(general.id, slack_world.bob.id, "through the new url")
        await admin.wait_for_event(room_id, body_is("through the new url"), timeout=20)
