"""The user cache keeps of each Slack user what the bridge reads (names, avatar, kind), not
the whole users.info answer: a 10,000-user workspace must not cost 60 MiB of profiles."""

from __future__ import annotations

import pytest

from bridges.slack.users import UserDirectory, avatar_url, display_name, slim, user_info_of
from tests.slack.conftest import body_is, connector, login_app, open_channel

pytestmark = pytest.mark.engine_independent

FULL = {
    "id": "U0001",
    "team_id": "T0001",
    "name": "carol",
    "real_name": "Carol Clay",
    "deleted": False,
    "is_bot": False,
    "color": "9f69e7",
    "tz": "Europe/London",
    "tz_label": "Greenwich Mean Time",
    "is_restricted": False,
    "profile": {
        "title": "Potter",
        "phone": "+44 20 0000 0000",
        "status_text": "at the wheel",
        "display_name": "carol",
        "real_name": "Carol Clay",
        "image_24": "https://a.example/24.png",
        "image_192": "https://a.example/192.png",
        "image_512": "https://a.example/512.png",
        "image_1024": "https://a.example/1024.png",
        "fields": {"Xf1": {"value": "kilns", "alt": ""}},
    },
}


def test_slim_keeps_what_the_bridge_reads():
    kept = slim(FULL)
    assert display_name(kept) == display_name(FULL) == "carol"
    assert avatar_url(kept) == avatar_url(FULL) == "https://a.example/512.png"
    assert user_info_of(kept) == user_info_of(FULL)
    assert kept["id"] == "U0001" and kept["deleted"] is False
    for dropped in ("color", "tz", "tz_label", "is_restricted"):
        assert dropped not in kept
    assert set(kept["profile"]) == {"display_name", "real_name", "image_192", "image_512"}


def test_update_and_cached_hold_the_slim_form():
    users = UserDirectory()
    users.update("T0001", FULL)
    assert users.cached("T0001", "U0001") == slim(FULL)
    assert "status_text" not in users.cached("T0001", "U0001")["profile"]


async def test_a_mentioned_user_is_cached_slim(slack_bridge, slack_world, bridge_env, uid):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        fake = slack_world.fake
        carol = fake.add_user(slack_world.team.id, "carol", real_name="Carol Clay")
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, f"hi <@{carol.id}>")
        await admin.wait_for_event(room_id, body_is("hi Carol Clay"))
        cached = connector(slack_bridge).users.cached(slack_world.team.id, carol.id)
        assert cached is not None and display_name(cached) == "Carol Clay"
        assert "tz_label" not in cached and "title" not in cached["profile"]
