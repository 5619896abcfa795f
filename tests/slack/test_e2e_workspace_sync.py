"""What a Slack workspace says about itself reaches Matrix: channel name, topic and purpose
(bridges/slack/chat_changes.py), joins and leaves, bounded for large channels
(bridges/slack/members.py), profile changes (bridges/slack/user_updates.py) and the workspace
as a space (bridges/slack/chats.py); fake Slack (real slack-sdk) <-> bridge <-> real Synapse."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, ghost, login_app, open_channel

pytestmark = pytest.mark.engine_independent


def state_is(kind: str, **content: Any) -> Any:
    return lambda e: (
        e.get("type") == kind and all(e.get("content", {}).get(k) == v for k, v in content.items())
    )


def member_is(mxid: str, membership: str) -> Any:
    return lambda e: (
        e.get("type") == "m.room.member"
        and e.get("state_key") == mxid
        and e.get("content", {}).get("membership") == membership
    )


async def room_members(user: MatrixTestClient, room_id: str) -> dict[str, str]:
    """Every m.room.member in the room's state: user id -> membership."""
    state = await user.request("GET", f"/rooms/{room_id}/state")
    events: list[dict[str, Any]] = state["value"]  # the client wraps a JSON list
    return {
        e["state_key"]: e["content"].get("membership", "")
        for e in events
        if e.get("type") == "m.room.member"
    }


async def test_rename_topic_and_purpose_reach_the_room(slack_bridge, slack_world, bridge_env, uid):
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, bob)
        assert (await admin.get_state(room_id, "m.room.name"))["name"] == "#general"

        fake.rename(general.id, "town-square", user=bob.id)  # an event and a message
        await admin.wait_for_event(room_id, state_is("m.room.name", name="#town-square"))

        # A purpose alone is the room topic...
        fake.set_purpose(general.id, bob.id, "where everyone talks")
        await admin.wait_for_event(room_id, state_is("m.room.topic", topic="where everyone talks"))
        # ...a topic takes its place, and a later purpose change does not hide the topic.
        fake.set_topic(general.id, bob.id, "release on Friday")
        await admin.wait_for_event(room_id, state_is("m.room.topic", topic="release on Friday"))
        fake.set_purpose(general.id, bob.id, "a new purpose")
        fake.post_user_message(general.id, bob.id, "checkpoint")
        await admin.wait_for_event(room_id, body_is("checkpoint"))
        assert (await admin.get_state(room_id, "m.room.topic"))["topic"] == "release on Friday"

        # A private channel's rename comes as group_rename.
        secret = fake.add_conversation(
            slack_world.team.id, "secret", kind="private", members=[bob.id]
        )
        secret_room = await open_channel(slack_bridge, slack_world, admin, secret, bob)
        fake.rename(secret.id, "hush", user=bob.id)
        await admin.wait_for_event(secret_room, state_is("m.room.name", name="#hush"))

        # The change messages are not messages on Matrix; the rename was set once.
        events = await admin.messages(room_id)
        bodies = [e["content"].get("body") for e in events if e["type"] == "m.room.message"]
        assert bodies == ["first words", "checkpoint"]
        names = [e for e in events if e["type"] == "m.room.name"]
        assert [e["content"]["name"] for e in names] == ["#general", "#town-square"]


async def test_joins_and_leaves_of_a_small_channel(slack_bridge, slack_world, bridge_env, uid):
    fake, general, bob, alice = (
        slack_world.fake,
        slack_world.general,
        slack_world.bob,
        slack_world.alice,
    )
    carol = fake.add_user(slack_world.team.id, "carol", real_name="Carol Singer")
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, bob)
        # A small channel's members are there from the start (alice never spoke).
        await admin.wait_for_event(room_id, member_is(slack_world.ghost(alice), "join"))

        fake.join(general.id, carol.id)
        await admin.wait_for_event(room_id, member_is(slack_world.ghost(carol), "join"))
        fake.leave(general.id, alice.id)
        await admin.wait_for_event(room_id, member_is(slack_world.ghost(alice), "leave"))

        fake.post_user_message(general.id, bob.id, "checkpoint")
        await admin.wait_for_event(room_id, body_is("checkpoint"))
        events = await admin.messages(room_id)
        bodies = [e["content"].get("body") for e in events if e["type"] == "m.room.message"]
        assert bodies == ["first words", "checkpoint"]  # no "has joined the channel"
        members = await room_members(admin, room_id)
        assert members[slack_world.ghost(carol)] == "join"
        assert members[slack_world.ghost(alice)] == "leave"
        assert members[slack_world.ghost(bob)] == "join"
        # The app's own bot user is the bridge bot: it has no ghost.
        assert slack_world.ghost(fake.users[slack_world.team.bot_user_id]) not in members


async def test_a_5000_member_channel_costs_one_membership_per_speaker(
    slack_bridge, slack_world, bridge_env, uid
):
    """matrix-appservice-slack #711: membership churn of large channels filled a database.
    Above member_list_limit (200) no member list and no join events: ghosts join as they
    speak; leaves of those that did are bridged."""
    fake, team, bob = slack_world.fake, slack_world.team, slack_world.bob
    crowd = [fake.add_user(team.id, f"user{i}").id for i in range(5000)]
    big = fake.add_conversation(team.id, "everyone", members=[bob.id, *crowd])
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, big, bob)
        speakers = crowd[:3]
        for i, user in enumerate(speakers):
            fake.post_user_message(big.id, user, f"speaker {i}")
        for user in crowd[3:53]:  # 50 who leave and come back without a word
            fake.leave(big.id, user)
            fake.join(big.id, user)
        newcomers = [fake.add_user(team.id, f"new{i}").id for i in range(20)]
        for user in newcomers:
            fake.join(big.id, user)
        fake.leave(big.id, speakers[0])
        fake.post_user_message(big.id, bob.id, "checkpoint")
        await admin.wait_for_event(room_id, body_is("checkpoint"), timeout=60)
        await admin.wait_for_event(room_id, member_is(ghost(team.id, speakers[0]), "leave"))

        members = await room_members(admin, room_id)
        ghosts = {m for m in members if m.startswith("@_slack_")}
        assert ghosts == {ghost(team.id, u) for u in [bob.id, *speakers]}
        timeline = await admin.messages(room_id, limit=1000)
        member_events = [e for e in timeline if e["type"] == "m.room.member"]
        # The bot's join, the admin's invite and join, an invite and a join for each of the
        # four who spoke, one leave: 12 for a channel of 5,021 with 70 joins and 51 leaves.
        assert len(member_events) == 1 + 2 + 2 * 4 + 1, [
            (e["state_key"], e["content"].get("membership")) for e in member_events
        ]
        assert not [c for c in fake.calls("conversations.members") if c.params["channel"] == big.id]
        sizes = connector(slack_bridge).chats.sizes
        assert sizes[(team.id, big.id)] == len(fake.conversations[big.id].members)


async def test_profile_changes_reach_the_ghost(slack_bridge, slack_world, bridge_env, uid):
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        await open_channel(slack_bridge, slack_world, admin, general, bob)
        bob_ghost = slack_world.ghost(bob)

        async def profile() -> dict[str, Any]:
            return await admin.get_profile(bob_ghost)

        await eventually(lambda: _has(profile, displayname="Bob Builder"), timeout=30)
        before = (await profile()).get("avatar_url")

        fake.update_user(bob.id, display_name="Robert")
        await eventually(lambda: _has(profile, displayname="Robert"), timeout=30)

        fake.update_user(bob.id, avatar=b"\x89PNG\r\n\x1a\n" + b"new face" * 10)
        await eventually(lambda: _avatar_changed(profile, before), timeout=30)
        assert (await profile())["avatar_url"].startswith("mxc://")
        images = [r for r in fake.requests if r.kind == "image" and bob.id in r.method]
        assert images, "the new avatar was fetched from Slack"


async def _has(profile: Any, **want: Any) -> bool:
    got = await profile()
    return all(got.get(k) == v for k, v in want.items())


async def _avatar_changed(profile: Any, before: str | None) -> bool:
    url = (await profile()).get("avatar_url")
    return bool(url) and url != before


async def test_the_workspace_is_a_space_with_its_portals(
    slack_bridge, slack_world, bridge_env, uid
):
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    fake.set_team_icon(slack_world.team.id, b"\x89PNG\r\n\x1a\n" + b"acme logo" * 10)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, bob)
        space_id, _ = await admin.wait_for_invite(spaces=True, timeout=30)
        await admin.join(space_id)
        assert (await admin.get_state(space_id, "m.room.create")).get("type") == "m.space"
        assert (await admin.get_state(space_id, "m.room.name"))["name"] == "Acme"
        assert (await admin.get_state(space_id, "m.room.avatar"))["url"].startswith("mxc://")
        child = await admin.get_state(space_id, "m.space.child", room_id)
        assert child.get("via")
        parent = await admin.get_state(room_id, "m.space.parent", space_id)
        assert parent.get("canonical") is True
        assert len(fake.calls("team.info")) == 1  # asked once per workspace

        # A new workspace name reaches the space with the next chat info.
        fake.rename_team(slack_world.team.id, "Acme Corp")
        random = fake.add_conversation(slack_world.team.id, "random", members=[bob.id])
        await open_channel(slack_bridge, slack_world, admin, random, bob)
        await admin.wait_for_event(space_id, state_is("m.room.name", name="Acme Corp"))


async def test_malformed_workspace_events_are_skipped(slack_bridge, slack_world, bridge_env, uid):
    """Untrusted shapes (a user that is not an object, ids that are not Slack ids, a rename
    without a channel, a topic change in a channel the workspace does not have) are skipped
    and what follows still arrives."""
    fake, general, bob = slack_world.fake, slack_world.general, slack_world.bob
    team = slack_world.team.id
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, slack_world)
        room_id = await open_channel(slack_bridge, slack_world, admin, general, bob)
        for event in (
            {"type": "user_change", "user": "U123"},
            {"type": "user_change", "user": {"id": "../../etc", "name": "x"}},
            {"type": "user_change", "user": {"id": bob.id, "team_id": "T999", "name": "spy"}},
            {"type": "member_joined_channel", "channel": general.id},
            {"type": "member_left_channel", "user": ["U1"], "channel": general.id},
            {"type": "channel_rename", "channel": "C1"},
            {"type": "channel_rename", "channel": {"id": general.id, "name": ""}},
            {"type": "message", "subtype": "channel_name", "channel": general.id, "name": 5},
            {"type": "message", "subtype": "channel_topic", "channel": "C0NOSUCH", "ts": "1.2"},
            {"type": "message", "subtype": "channel_join", "channel": general.id, "ts": "x"},
        ):
            fake.emit_event(team, event)
        fake.post_user_message(general.id, bob.id, "still here")
        await admin.wait_for_event(room_id, body_is("still here"))
        assert (await admin.get_state(room_id, "m.room.name"))["name"] == "#general"
        assert (await admin.get_profile(slack_world.ghost(bob)))["displayname"] == "Bob Builder"
        events = await admin.messages(room_id)
        bodies = [e["content"].get("body") for e in events if e["type"] == "m.room.message"]
        assert bodies == ["first words", "still here"]
