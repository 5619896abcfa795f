"""Matrix -> Slack room metadata and read markers (bridges/slack/room_meta.py): a Matrix user
with a personal Slack login who renames the portal room or sets its topic renames the channel
or sets its topic as their Slack user; a relayed user's change never reaches Slack; a rename
Slack refuses gets a notice and the room its name back; Slack's report of the change does not
set the room a second time. Read receipts of a personal login move its Slack read marker
(``conversations.mark``) until Slack says the token lacks the scope. Fake Slack (real
slack-sdk) <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.contract.events import MatrixReadReceipt, PortalKey
from bridges.slack.ids import chat_rid
from bridges.slack.room_meta import slack_channel_name, slack_topic, ts_key
from tests.conftest import eventually
from tests.slack.conftest import body_is, login_app, login_user, open_channel

pytestmark = pytest.mark.engine_independent


def state_is(kind: str, **content: Any) -> Any:
    return lambda e: (
        e.get("type") == kind and all(e.get("content", {}).get(k) == v for k, v in content.items())
    )


def is_notice(text: str) -> Any:
    return lambda e: (
        e.get("type") == "m.room.message"
        and e["content"].get("msgtype") == "m.notice"
        and text in e["content"].get("body", "")
    )


async def set_level(bridge: Any, room_id: str, mxid: str, level: int) -> None:
    """The bot (the room's creator) lets a Matrix user change the room's state."""
    bot = bridge.matrix.bot
    levels = await bot.get_power_levels(room_id)
    levels.set_user_level(mxid, level)
    await bot.set_power_levels(room_id, levels)


async def portal_with(bridge: Any, world: Any, admin: Any, *users: Any) -> str:
    """#general's portal, with ``users`` joined and allowed to change its name and topic."""
    room_id = await open_channel(bridge, world, admin, world.general, world.bob)
    for user in users:
        await admin.invite(room_id, user.user_id)
        await user.join(room_id)
        await set_level(bridge, room_id, user.user_id, 50)
    return room_id


async def settle(bridge: Any, world: Any, admin: Any, room_id: str, text: str) -> None:
    """A Slack message said after the changes has reached the room, and the bridge is idle."""
    world.fake.post_user_message(world.general.id, world.bob.id, text)
    await admin.wait_for_event(room_id, body_is(text))
    await eventually(lambda: bridge.inbox.pending == 0)


async def state_values(admin: Any, room_id: str, kind: str, key: str) -> list[Any]:
    """Every ``kind`` event of the room's timeline (oldest first): its ``key``."""
    return [e["content"].get(key) for e in await admin.messages(room_id) if e["type"] == kind]


async def test_personal_login_renames_the_channel_once(dp_bridge, slack_world, bridge_env, uid):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, slack_world)
        await login_user(dp_bridge, alice, slack_world, slack_world.alice)
        room_id = await portal_with(dp_bridge, slack_world, admin, alice)

        await alice.send_state(room_id, "m.room.name", "", {"name": "#town-square"})
        await eventually(lambda: fake.conversations[general.id].name == "town-square", timeout=45)
        call = fake.calls("conversations.rename")[-1]
        assert call.token == fake.user_token(slack_world.alice.id)
        assert call.params["name"] == "town-square"
        await alice.send_state(room_id, "m.room.topic", "", {"topic": "release on Friday"})
        await eventually(lambda: fake.conversations[general.id].topic == "release on Friday")
        assert fake.calls("conversations.setTopic")[-1].token == call.token
        # Slack's channel_rename, channel_name and channel_topic come back: not set again.
        await settle(dp_bridge, slack_world, admin, room_id, "after the changes")
        names = await state_values(admin, room_id, "m.room.name", "name")
        assert names == ["#general", "#town-square"]
        topics = await state_values(admin, room_id, "m.room.topic", "topic")
        assert topics.count("release on Friday") == 1
        assert len(fake.calls("conversations.rename")) == 1
        assert len(fake.calls("conversations.setTopic")) == 1

        # A name by Matrix's habits becomes one by Slack's rules; the room shows Slack's.
        await alice.send_state(room_id, "m.room.name", "", {"name": "Release Plans 2027!"})
        await eventually(lambda: fake.conversations[general.id].name == "release-plans-2027")
        await admin.wait_for_event(room_id, state_is("m.room.name", name="#release-plans-2027"))


async def test_refused_rename_gets_a_notice_and_the_name_back(
    dp_bridge, slack_world, bridge_env, uid
):
    fake, general = slack_world.fake, slack_world.general
    fake.add_conversation(slack_world.team.id, "random", members=[slack_world.bob.id])
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, slack_world)
        await login_user(dp_bridge, alice, slack_world, slack_world.alice)
        room_id = await portal_with(dp_bridge, slack_world, admin, alice)

        # Slack refuses a name another channel has: the room says why and is #general again.
        await alice.send_state(room_id, "m.room.name", "", {"name": "#random"})
        notice = await admin.wait_for_event(room_id, is_notice("not renamed"), timeout=30)
        assert "another channel" in notice["content"]["body"]

        async def restored(after: str) -> bool:
            names = await state_values(admin, room_id, "m.room.name", "name")
            return names[-2:] == [after, "#general"]

        await eventually(lambda: restored("#random"), timeout=30)
        assert (await admin.get_state(room_id, "m.room.name"))["name"] == "#general"
        assert fake.conversations[general.id].name == "general"

        # A name with nothing Slack allows is refused before asking Slack.
        calls = len(fake.calls("conversations.rename"))
        await alice.send_state(room_id, "m.room.name", "", {"name": "!!! ???"})
        await admin.wait_for_event(room_id, is_notice("needs letters or digits"), timeout=30)
        await eventually(lambda: restored("!!! ???"), timeout=30)
        assert len(fake.calls("conversations.rename")) == calls


async def test_relayed_users_change_nothing_on_slack(dp_bridge, slack_world, bridge_env, uid):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))  # no Slack login: relayed
    async with admin, carol:
        await login_app(dp_bridge, admin, slack_world)
        room_id = await portal_with(dp_bridge, slack_world, admin, carol)
        await carol.send_state(room_id, "m.room.name", "", {"name": "#carols-room"})
        await carol.send_state(room_id, "m.room.topic", "", {"topic": "carol was here"})
        await carol.send_text(room_id, "relayed after")
        await eventually(lambda: any(m.text == "relayed after" for m in fake.messages[general.id]))
        await settle(dp_bridge, slack_world, admin, room_id, "after carol")
        assert fake.calls("conversations.rename") == []
        assert fake.calls("conversations.setTopic") == []
        assert fake.conversations[general.id].name == "general"
        assert fake.conversations[general.id].topic == ""

        # The app login's owner is no Slack user either (the bot is nobody's self): the room
        # says so and shows the channel's name and topic again.
        await set_level(dp_bridge, room_id, admin.user_id, 100)
        await admin.send_state(room_id, "m.room.name", "", {"name": "#admins-room"})
        await admin.wait_for_event(room_id, is_notice("only a personal Slack login"), timeout=30)
        await admin.send_state(room_id, "m.room.topic", "", {"topic": "admin was here"})

        async def restored() -> bool:
            names = await state_values(admin, room_id, "m.room.name", "name")
            topics = await state_values(admin, room_id, "m.room.topic", "topic")
            return names[-2:] == ["#admins-room", "#general"] and topics[-1] == ""

        await eventually(restored, timeout=30)
        assert fake.calls("conversations.rename") == []
        assert fake.calls("conversations.setTopic") == []


async def test_read_receipts_move_the_slack_read_marker(dp_bridge, slack_world, bridge_env, uid):
    fake, general = slack_world.fake, slack_world.general
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, alice:
        await login_app(dp_bridge, admin, slack_world)
        personal = await login_user(dp_bridge, alice, slack_world, slack_world.alice)
        room_id = await portal_with(dp_bridge, slack_world, admin, alice)
        said = fake.post_user_message(general.id, slack_world.bob.id, "read me")
        evt = await alice.wait_for_event(room_id, body_is("read me"))
        key = PortalKey(chat_rid(slack_world.team.id, general.id))
        # The event's Slack ts is recorded once the bridge's send returned, which can be after
        # Alice's client saw it: a receipt faster than that finds no Slack message to mark.
        await eventually(lambda: personal.connector.bridge.find_remote_id(key, evt["event_id"]))
        await alice.request("POST", f"/rooms/{room_id}/receipt/m.read/{evt['event_id']}", {})
        await eventually(
            lambda: fake.read_mark(slack_world.alice.id, general.id) == said.ts, timeout=45
        )
        call = fake.calls("conversations.mark")[-1]
        assert call.token == fake.user_token(slack_world.alice.id)
        # Synapse passes on no receipt behind the last; one that came anyway (a receipt of an
        # older message: another device of Alice's, behind) would move nothing on Slack.
        older = await alice.wait_for_event(room_id, body_is("first words"))
        older_ts = await personal.connector.bridge.find_remote_id(key, older["event_id"])
        assert older_ts is not None and older_ts < said.ts
        receipt = MatrixReadReceipt(key, room_id, alice.user_id, older["event_id"], older_ts)
        await personal.handle_matrix_read_receipt(receipt)
        assert len(fake.calls("conversations.mark")) == 1
        # The admin's receipt (an app login: the bot reads nothing) moves no marker.
        await admin.request("POST", f"/rooms/{room_id}/receipt/m.read/{evt['event_id']}", {})
        assert all(c.token != slack_world.bot_token for c in fake.calls("conversations.mark"))

        # A token without the scope: Slack says missing_scope once, the bridge stops asking.
        fake.restrict_scopes(fake.user_token(slack_world.alice.id), {"chat:write"})
        for text in ("second", "third"):
            fake.post_user_message(general.id, slack_world.bob.id, text)
            evt = await alice.wait_for_event(room_id, body_is(text))
            await alice.request("POST", f"/rooms/{room_id}/receipt/m.read/{evt['event_id']}", {})
        await eventually(
            lambda: any(
                c.response and not c.response.get("ok") for c in fake.calls("conversations.mark")
            )
        )
        await settle(dp_bridge, slack_world, admin, room_id, "after the receipts")
        marks = fake.calls("conversations.mark")
        assert len(marks) == 2  # the first receipt, then the one missing_scope stopped
        assert [c.response.get("error") for c in marks if not c.response.get("ok")] == [
            "missing_scope"
        ]
        assert fake.read_mark(slack_world.alice.id, general.id) == said.ts
        notices = [e for e in alice.history(room_id) if is_notice("")(e)]
        assert notices == []


def test_names_and_topics_follow_slacks_rules():
    assert slack_channel_name("#Town Square") == "town-square"
    assert slack_channel_name("  Ünïcode  ok_ ") == "unicode-ok"
    assert slack_channel_name("a" * 100) == "a" * 80
    assert slack_channel_name("#!!!") == ""
    assert slack_channel_name("x -- y") == "x-y"
    assert slack_topic("one\ntwo") == "one two"
    assert len(slack_topic("t" * 300)) == 250
    assert ts_key("1712345678.000100") == (1712345678, 100)
    assert ts_key("1712345678.000100") < ts_key("1712345678.000101")
    assert ts_key("x") is None and ts_key("1.2.3") is None
