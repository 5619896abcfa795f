"""A channel's Slack messages reach Matrix in the order Slack sent them, even when turning
one into a Matrix event waits on the Web API (a mention of a user the bridge does not know
yet: ``users.info``) and the next one does not."""

from __future__ import annotations

import pytest

from bridges.slack.dms import event_channel as channel_of
from bridges.slack.ordering import ChannelTurns
from tests.slack.conftest import body_is, login_app, open_channel

pytestmark = pytest.mark.engine_independent


async def test_a_slow_mention_does_not_let_the_next_message_pass(
    slack_bridge, slack_world, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        fake = slack_world.fake
        carol = fake.add_user(slack_world.team.id, "carol", real_name="Carol Clay")
        fake.delay("users.info", 1.5)  # the bridge has not met Carol: her name is looked up
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, f"<@{carol.id}> one")
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, "two")
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, "three")
        await admin.wait_for_event(room_id, body_is("three"), timeout=30)
        bodies = [
            e["content"]["body"]
            for e in await admin.messages(room_id)
            if e["type"] == "m.room.message"
        ]
        tail = [b for b in bodies if b.endswith(("one", "two", "three"))]
        assert tail == ["Carol Clay one", "two", "three"], bodies


def test_channel_of_events():
    assert channel_of({"type": "message", "channel": "C1"}) == "C1"
    assert channel_of({"type": "channel_rename", "channel": {"id": "C2", "name": "x"}}) == "C2"
    assert channel_of({"type": "reaction_added", "item": {"channel": "C3", "ts": "1.2"}}) == "C3"
    assert channel_of({"type": "user_change", "user": {"id": "U1"}}) == ""
    assert channel_of({"type": "message", "channel": ["not", "a", "string"]}) == ""


async def test_turns_are_dropped_when_idle():
    turns = ChannelTurns()
    async with turns.turn("T1:C1"):
        assert len(turns) == 1
    assert len(turns) == 0
