"""The Events API over HTTP, instead of Socket Mode: the fake pushes signed events to the
bridge's listener; forged, replayed, malformed and oversized pushes are refused; Slack's
retries are deduplicated; each push goes to the app login of its workspace."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from bridgekit.contract.connector import BridgeStateEvent
from bridgekit.testing.ports import free_port
from tests.conftest import eventually
from tests.slack.conftest import _complete, body_is, connector, open_channel, slack_networks

pytestmark = pytest.mark.engine_independent


@pytest.fixture
async def http_bridge(make_bridge, slack_fake):
    port = free_port("127.0.0.1")
    networks = slack_networks(slack_fake, events_api={"enabled": True, "port": port})
    bridge = await make_bridge(networks=networks)
    bridge.events_url = f"http://127.0.0.1:{port}/slack/events"  # type: ignore[attr-defined]
    slack_fake.socket_mode = False
    return bridge


async def login_http_app(bridge, user_mxid: str, fake, team_id: str):
    info = await _complete(
        bridge,
        user_mxid,
        "app",
        [
            {"bot_token": fake.bot_token(team_id)},
            {"app_token": "-"},
            {"signing_secret": fake.signing_secret},
        ],
    )
    await bridge.commands.get_or_create_user(user_mxid)
    client = await bridge.add_login(info)
    await eventually(
        lambda: bridge.login_states[client.login.id].state == BridgeStateEvent.CONNECTED,
        timeout=20,
    )
    return client


def spy_queue(bridge, monkeypatch) -> list[tuple[str | None, object]]:
    api = connector(bridge).bridge
    real = api.queue_remote_event
    queued: list[tuple[str | None, object]] = []

    async def spy(login_id, event):
        queued.append((login_id, event))
        await real(login_id, event)

    monkeypatch.setattr(api, "queue_remote_event", spy)
    return queued


def message_payload(fake, team, channel, user, text: str) -> dict:
    return fake.event_payload(
        team.id,
        {
            "type": "message",
            "channel": channel.id,
            "channel_type": "channel",
            "user": user.id,
            "text": text,
            "ts": fake.new_ts(),
        },
    )


async def post_raw(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession(trust_env=False) as session:
        async with session.post(url, data=body, headers=headers) as resp:
            return resp.status


async def test_events_arrive_over_http_and_url_verification(
    http_bridge, slack_world, bridge_env, uid
):
    fake, url = slack_world.fake, http_bridge.events_url
    ok, res = await fake.verify_url(url)
    assert not ok and res.status == 401  # no app login knows this signing secret yet
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        client = await login_http_app(http_bridge, admin.user_id, fake, slack_world.team.id)
        assert client.socket is None and fake.connected_sockets == 0
        ok, res = await fake.verify_url(url)
        assert ok, res
        fake.events_url = url
        room_id = await open_channel(
            http_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, "over http")
        await admin.wait_for_event(room_id, body_is("over http"))
        assert all(result.status == 200 for _, result in fake.pushes)
        await admin.send_text(room_id, "and back")
        await fake.wait_for(
            lambda r: r.method == "chat.postMessage" and r.params.get("text") == "and back"
        )


async def test_forged_replayed_malformed_and_oversized_pushes_are_refused(
    http_bridge, slack_world, bridge_env, uid, monkeypatch
):
    fake, url = slack_world.fake, http_bridge.events_url
    team, general, bob = slack_world.team, slack_world.general, slack_world.bob
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_http_app(http_bridge, admin.user_id, fake, team.id)
        queued = spy_queue(http_bridge, monkeypatch)
        stale = await fake.push_stale(url, message_payload(fake, team, general, bob, "replay"))
        assert stale.status == 401
        forged = await fake.push_badly_signed(url, message_payload(fake, team, general, bob, "f"))
        assert forged.status == 401
        ts = str(int(time.time()))
        for headers in (
            {},  # unsigned
            {"X-Slack-Request-Timestamp": ts},
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=" + "0" * 64},
            {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=é"},
        ):
            assert await post_raw(url, b"{}", headers) == 401
        for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b"[" * 100_000):
            headers = {
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": fake.sign(body, int(ts)),
                "Content-Type": "application/json",
            }
            assert await post_raw(url, body, headers) == 400
        big = json.dumps({"type": "event_callback", "pad": "x" * (1024 * 1024)}).encode()
        headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": fake.sign(big, int(ts))}
        assert await post_raw(url, big, headers) == 413
        # A malformed event, correctly signed: skipped (200: a retry would not mend it).
        bad = message_payload(fake, team, general, bob, "bad")
        bad["event"]["ts"] = "not a ts"
        assert (await fake.push_event(url, bad)).status == 200
        assert queued == []
        # The listener is still there for good pushes.
        good = await fake.push_event(url, message_payload(fake, team, general, bob, "good"))
        assert good.status == 200
        assert len(queued) == 1


async def test_slack_retries_are_deduplicated(
    http_bridge, slack_world, bridge_env, uid, monkeypatch
):
    fake, url = slack_world.fake, http_bridge.events_url
    team, general, bob = slack_world.team, slack_world.general, slack_world.bob
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_http_app(http_bridge, admin.user_id, fake, team.id)
        fake.events_url = url
        room_id = await open_channel(http_bridge, slack_world, admin, general, bob)
        queued = spy_queue(http_bridge, monkeypatch)
        payload = message_payload(fake, team, general, bob, "pushed twice")
        assert (await fake.push_event(url, payload)).status == 200
        retry = await fake.push_event(url, payload, retry_num=1, retry_reason="http_timeout")
        assert retry.status == 200
        await admin.wait_for_event(room_id, body_is("pushed twice"))
        assert len(queued) == 1
        # A retry that comes while the first push is still being stored waits for it.
        api = connector(http_bridge).bridge
        spied = api.queue_remote_event

        async def slow(login_id, event):
            await asyncio.sleep(1.0)
            await spied(login_id, event)

        monkeypatch.setattr(api, "queue_remote_event", slow)
        payload = message_payload(fake, team, general, bob, "slow then retried")
        first = asyncio.ensure_future(fake.push_event(url, payload))
        await asyncio.sleep(0.3)
        retry = await fake.push_event(url, payload, retry_num=1)
        assert retry.status == 200 and (await first).status == 200
        assert sum(1 for _, e in queued if getattr(e, "id", "") == payload["event"]["ts"]) == 1
        await admin.wait_for_event(room_id, body_is("slow then retried"))


async def test_a_push_not_stored_is_refused_and_slacks_retry_delivers_it(
    http_bridge, slack_world, bridge_env, uid, monkeypatch
):
    fake, url = slack_world.fake, http_bridge.events_url
    team, general, bob = slack_world.team, slack_world.general, slack_world.bob
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_http_app(http_bridge, admin.user_id, fake, team.id)
        fake.events_url = url
        room_id = await open_channel(http_bridge, slack_world, admin, general, bob)
        api = connector(http_bridge).bridge
        real = api.queue_remote_event
        failed: list[object] = []

        async def down_once(login_id, event):
            if not failed:
                failed.append(event)
                raise RuntimeError("the database is away")
            await real(login_id, event)

        monkeypatch.setattr(api, "queue_remote_event", down_once)
        fake.push_retry_delays = (0.5,)
        fake.post_user_message(general.id, bob.id, "second time lucky")
        await admin.wait_for_event(room_id, body_is("second time lucky"), timeout=30)
        statuses = [
            r.status for p, r in fake.pushes if p["event"].get("text") == "second time lucky"
        ]
        assert statuses == [500, 200]


async def test_each_push_goes_to_its_workspace_app_login(
    http_bridge, slack_world, bridge_env, uid, monkeypatch
):
    fake, url = slack_world.fake, http_bridge.events_url
    beta = fake.add_team("Beta", "beta")
    carol = fake.add_user(beta.id, "carol")
    lounge = fake.add_conversation(beta.id, "lounge", members=[carol.id])
    gamma = fake.add_team("Gamma", "gamma")  # the app is installed there, no login
    dave = fake.add_user(gamma.id, "dave")
    attic = fake.add_conversation(gamma.id, "attic", members=[dave.id])
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        acme_app = await login_http_app(http_bridge, admin.user_id, fake, slack_world.team.id)
        beta_app = await login_http_app(http_bridge, admin.user_id, fake, beta.id)
        queued = spy_queue(http_bridge, monkeypatch)
        to_beta = message_payload(fake, beta, lounge, carol, "for beta")
        assert (await fake.push_event(url, to_beta)).status == 200
        to_acme = message_payload(
            fake, slack_world.team, slack_world.general, slack_world.bob, "for acme"
        )
        assert (await fake.push_event(url, to_acme)).status == 200
        to_gamma = message_payload(fake, gamma, attic, dave, "for nobody")
        assert (await fake.push_event(url, to_gamma)).status == 200
        assert [login for login, _ in queued] == [beta_app.login.id, acme_app.login.id]
        portals = [e.portal.id for _, e in queued]
        assert portals[0].startswith(beta.id.lower()) and portals[1].startswith(
            slack_world.team.id.lower()
        )


async def test_events_api_login_needs_the_listener(slack_bridge, slack_world):
    """Without the listener, `-` for the app-level token is refused with the reason; a
    signing secret that is not one is refused too."""
    fake = slack_world.fake
    with pytest.raises(ValueError, match="does not listen for the Events API"):
        await _complete(
            slack_bridge,
            "@x:bridgekit.test",
            "app",
            [{"bot_token": fake.bot_token(slack_world.team.id)}, {"app_token": "-"}],
        )


async def test_a_signing_secret_must_look_like_one(http_bridge, slack_world):
    fake = slack_world.fake
    with pytest.raises(ValueError, match="32 hex digits"):
        await _complete(
            http_bridge,
            "@x:bridgekit.test",
            "app",
            [
                {"bot_token": fake.bot_token(slack_world.team.id)},
                {"app_token": "-"},
                {"signing_secret": "xoxb-oops"},
            ],
        )
