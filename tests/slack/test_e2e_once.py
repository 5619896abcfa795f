"""One Slack event reaches Matrix once however many bridge users see it (mautrix-slack
v0.2.0 bridged edits once per logged-in user; mautrix-slack #6 doubled reactions). Slack sends
an app one event per change, naming one of the parties that see it; only the app login
receives, personal logins only send. Fake Slack <-> bridge <-> real Synapse."""

from __future__ import annotations

from collections import Counter

import pytest

from bridges.slack.ids import portal_key
from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, login_app, login_user, open_channel

pytestmark = pytest.mark.engine_independent


def _count(events: list[dict], body: str) -> int:
    return [e["content"].get("body") for e in events if e["type"] == "m.room.message"].count(body)


async def test_channel_events_once_with_app_and_two_personal_logins(
    dp_bridge, slack_world, bridge_env, uid
):
    w = slack_world
    fake = w.fake
    carol = fake.add_user(w.team.id, "carol")
    fake.join(w.general.id, carol.id)
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with admin, alice, bob:
        await login_app(dp_bridge, admin, w)
        await login_user(dp_bridge, alice, w, w.alice)
        await login_user(dp_bridge, bob, w, w.bob)
        room_id = await open_channel(dp_bridge, w, admin, w.general, carol)
        # Count what the connector handles per Slack event (wrapping whatever handles edits
        # and reactions: the threads module's handlers once merged).
        inbound = connector(dp_bridge).inbound
        handled: Counter[str] = Counter()

        def counting(key: str, inner):
            async def handler(client, event, payload):
                handled[f"{key}:{payload.get('event_id')}"] += 1
                if inner is not None:
                    await inner(client, event, payload)

            return handler

        inbound.on_subtype(
            "message_changed", counting("edit", inbound.subtypes.get("message_changed"))
        )
        inbound.on("reaction_added", counting("reaction", inbound.handlers.get("reaction_added")))

        msg = fake.post_user_message(w.general.id, carol.id, "said once")
        await admin.wait_for_event(room_id, body_is("said once"))
        edit = fake.edit_message(w.general.id, msg.ts, "said once, edited")
        reaction = fake.add_reaction(w.general.id, msg.ts, w.bob.id, "tada")
        assert edit is not None and reaction is not None
        fake.post_user_message(w.general.id, carol.id, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        await eventually(lambda: dp_bridge.inbox.pending == 0)
        assert _count(await admin.messages(room_id), "said once") == 1
        # Slack sent each event once, to the app, and the bridge handled each once.
        for payload in (edit, reaction):
            sent = [e for e in fake.envelopes if e.payload["event_id"] == payload["event_id"]]
            assert len(sent) == 1 and sent[0].acked
        assert handled == Counter(
            {f"edit:{edit['event_id']}": 1, f"reaction:{reaction['event_id']}": 1}
        )
        # Only the app has a Socket Mode connection: the personal logins never receive.
        assert fake.connected_sockets == 1


async def test_dm_message_once_in_each_members_portal(dp_bridge, slack_world, bridge_env, uid):
    w = slack_world
    fake = w.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    bob = await bridge_env.synapse.register_user(uid("bob"))
    async with admin, alice, bob:
        await login_app(dp_bridge, admin, w)
        a_login = await login_user(dp_bridge, alice, w, w.alice)
        b_login = await login_user(dp_bridge, bob, w, w.bob)
        dm = fake.add_conversation(
            w.team.id, kind="im", members=[w.alice.id, w.bob.id], with_bot=False
        )
        for text in ("one", "two"):
            fake.post_user_message(dm.id, w.bob.id, text)
        rooms = {}
        for user, login in ((alice, a_login), (bob, b_login)):
            key = portal_key(w.team.id, dm.id, login.login.id)

            async def made(key=key) -> bool:
                portal = await dp_bridge.store.get_portal("slack", key)
                return portal is not None and bool(portal.mxid)

            await eventually(made)
            portal = await dp_bridge.store.get_portal("slack", key)
            rooms[user.user_id] = portal.mxid
            await user.join(portal.mxid)  # invited (alice), or joined by the double puppet (bob)
        assert len(set(rooms.values())) == 2
        fake.post_user_message(dm.id, w.alice.id, "marker")
        for user in (alice, bob):
            room_id = rooms[user.user_id]
            await user.wait_for_event(room_id, body_is("marker"))
            await eventually(lambda: dp_bridge.inbox.pending == 0)
            events = await user.messages(room_id)
            assert _count(events, "one") == 1 and _count(events, "two") == 1
            assert _count(events, "marker") == 1
