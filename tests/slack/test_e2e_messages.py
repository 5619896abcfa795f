"""Messages both ways between a Slack channel and its portal room: fake Slack (real slack-sdk
on the bridge's side) <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.slack.conftest import body_is, login_app, open_channel

pytestmark = pytest.mark.engine_independent


async def test_channel_message_reaches_matrix_from_the_ghost(
    slack_bridge, slack_world, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        slack_world.fake.post_user_message(
            slack_world.general.id, slack_world.bob.id, "*bold* and <https://example.org|a link>"
        )
        evt = await admin.wait_for_event(
            room_id, body_is("*bold* and a link (https://example.org)")
        )
        assert evt["sender"] == slack_world.ghost(slack_world.bob)
        assert "<strong>bold</strong>" in evt["content"]["formatted_body"]


async def test_matrix_message_reaches_slack_and_is_not_echoed(
    slack_bridge, slack_world, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        await admin.send_text(room_id, "hello from matrix")
        fake = slack_world.fake
        await eventually(
            lambda: any(
                m.text == "hello from matrix" for m in fake.messages[slack_world.general.id]
            )
        )
        # The app's own message comes back over Socket Mode: it must not be bridged again.
        fake.post_user_message(slack_world.general.id, slack_world.bob.id, "after")
        await admin.wait_for_event(room_id, body_is("after"))
        events = await admin.messages(room_id)
        assert [e["content"]["body"] for e in events if e["type"] == "m.room.message"].count(
            "hello from matrix"
        ) == 1


async def test_matrix_user_without_login_is_relayed_with_name(
    slack_bridge, slack_world, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        await carol.set_displayname("Carol C")  # before joining: the join carries it
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        await carol.send_text(room_id, "relayed words")
        fake = slack_world.fake
        await eventually(
            lambda: any(m.text == "relayed words" for m in fake.messages[slack_world.general.id])
        )
        calls = fake.calls("chat.postMessage")
        sent = [c for c in calls if c.params.get("text") == "relayed words"]
        assert sent and sent[-1].params.get("username", "").startswith("Carol C")


async def test_markup_a_slack_user_injects_reaches_matrix_escaped(
    slack_bridge, slack_world, bridge_env, uid
):
    """Slack text is mrkdwn, not HTML: tags, ``javascript:`` links and entity games reach the
    room as text, never as markup a Matrix client would render."""
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(
            slack_bridge, slack_world, admin, slack_world.general, slack_world.bob
        )
        hostile = (
            "*hi* <script>alert(1)</script> &lt;img src=x onerror=alert(2)&gt; "
            '<javascript:alert(3)|click me> <https://example.org/"onmouseover="x|site>'
        )
        slack_world.fake.post_user_message(slack_world.general.id, slack_world.bob.id, hostile)
        evt = await admin.wait_for_event(
            room_id, lambda e: "alert(1)" in e.get("content", {}).get("body", "")
        )
        html = evt["content"].get("formatted_body", "")
        assert "<strong>hi</strong>" in html  # formatting still works
        lowered = html.lower()
        assert "<script" not in lowered and "<img" not in lowered
        assert 'href="javascript:' not in lowered
        assert '"onmouseover' not in lowered
