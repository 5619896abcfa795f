"""429s and passing failures of the Web API: Slack's ``Retry-After`` is honoured per method,
and a burst of Matrix messages reaches Slack whole and in order (slack-sdk alone would retry
only connection errors, once)."""

from __future__ import annotations

import asyncio

import pytest

from bridges.slack.client import SlackClient
from tests.conftest import eventually
from tests.slack.conftest import _complete, connector, login_app, open_channel

pytestmark = pytest.mark.engine_independent


def texts(fake, channel: str, prefix: str) -> list[str]:
    return [m.text for m in fake.messages.get(channel, []) if m.text.startswith(prefix)]


async def test_burst_while_rate_limited_arrives_whole_and_in_order(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        fake.rate_limit("chat.postMessage", retry_after=1, times=3)
        expected = [f"burst {i}" for i in range(12)]
        for body in expected:
            await admin.send_text(room_id, body)
        await eventually(lambda: len(texts(fake, general.id, "burst")) >= 12, timeout=60)
        await asyncio.sleep(0.5)
        assert texts(fake, general.id, "burst") == expected
        calls = fake.calls("chat.postMessage")
        limited = [c for c in calls if c.status == 429]
        assert len(limited) == 3
        # Nothing is sent again before Slack's Retry-After has passed.
        first = limited[0].at
        assert not [c for c in calls if first < c.at < first + 0.95]


async def test_retry_after_holds_back_the_method_not_the_others(slack_bridge, slack_world):
    """Another call of a 429'd method waits for the Retry-After instead of collecting a 429
    of its own; other methods go on (Slack's limits are per method)."""
    fake = slack_world.fake
    info = await _complete(
        slack_bridge,
        "@limits:bridgekit.test",
        "user",
        [{"user_token": fake.user_token(slack_world.alice.id)}],
    )
    client = SlackClient(connector(slack_bridge), info)
    fake.rate_limit("chat.postMessage", retry_after=3, times=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    first = asyncio.ensure_future(
        client.call("chat.postMessage", channel=slack_world.general.id, text="one")
    )
    await fake.wait_for(lambda r: r.method == "chat.postMessage" and r.status == 429)
    second = asyncio.ensure_future(
        client.call("chat.postMessage", channel=slack_world.general.id, text="two")
    )
    await client.call("auth.test")  # another method is not held back
    assert loop.time() - start < 2.5
    await asyncio.sleep(0.5)
    assert len(fake.calls("chat.postMessage")) == 1  # "two" waits for the Retry-After
    await asyncio.gather(first, second)
    assert loop.time() - start >= 3
    # Both went out once (their order is the runtime's business: a portal's sends are one
    # at a time, which the burst test above checks end to end).
    assert sorted(m.text for m in fake.messages[slack_world.general.id][-2:]) == ["one", "two"]


async def test_dropped_connection_and_slow_reply_are_retried_in_order(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, slack_world.bob)
        fake.disconnect("chat.postMessage", times=1)
        fake.delay("chat.postMessage", 2.0, times=1)
        for body in ("flaky 1", "flaky 2", "flaky 3"):
            await admin.send_text(room_id, body)
        await eventually(lambda: len(texts(fake, general.id, "flaky")) >= 3, timeout=60)
        await asyncio.sleep(0.5)
        assert texts(fake, general.id, "flaky") == ["flaky 1", "flaky 2", "flaky 3"]
        assert [c.status for c in fake.calls("chat.postMessage")][-4:] == [0, 200, 200, 200]
