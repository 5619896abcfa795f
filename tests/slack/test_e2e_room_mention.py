"""``@room`` / ``@channel`` / ``@here`` from Matrix become Slack's ``<!channel>`` / ``<!here>``
only from a sender with the power to mention the room (``notifications.room``); anyone else's
are neutralised. Fake Slack <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.helpers import give_power
from tests.slack.conftest import login_app, login_user, open_channel

pytestmark = pytest.mark.engine_independent


def _texts(fake, channel: str) -> list[str]:
    return [m.text for m in fake.messages[channel]]


async def test_room_mentions_need_the_power(slack_bridge, slack_world, bridge_env, uid):
    fake = slack_world.fake
    general = slack_world.general.id
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, alice, carol:
        await login_app(slack_bridge, admin, slack_world)
        await login_user(slack_bridge, alice, slack_world, slack_world.alice)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        for user in (alice, carol):
            await admin.invite(room_id, user.user_id)
            await user.join(room_id)
        # Without the power (level 0 < 50): relayed (carol) or personal (alice), no mention.
        await carol.send_text(room_id, "@room look, @channel and @here")
        await alice.send_text(room_id, "@channel from alice")
        await eventually(lambda: len(_texts(fake, general)) >= 3)  # "first words" and these
        texts = _texts(fake, general)
        assert "@room look, @\u2060channel and @\u2060here" in texts
        assert "@\u2060channel from alice" in texts
        assert not any("<!" in t for t in texts)
        # With it (50, the default notifications.room): Slack's own mentions.
        await give_power(slack_bridge, room_id, alice.user_id, 50)
        await alice.send_text(room_id, "@room and @here, wake up")
        await eventually(lambda: "<!channel> and <!here>, wake up" in _texts(fake, general))
        call = next(
            c
            for c in fake.calls("chat.postMessage")
            if c.params.get("text") == "<!channel> and <!here>, wake up"
        )
        assert call.token == fake.user_token(slack_world.alice.id)
