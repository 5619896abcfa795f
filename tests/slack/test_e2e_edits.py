"""Edits and deletes both ways, and emotes (``me_message`` <-> ``m.emote``): fake Slack (real
slack-sdk) <-> bridge <-> real Synapse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import eventually
from tests.slack.conftest import body_is, connector, login_app, login_user, open_channel
from tests.slack.test_e2e_threads import redacting, rel, replacing

pytestmark = pytest.mark.engine_independent


def edits_of(events: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if rel(e).get("rel_type") == "m.replace" and rel(e).get("event_id") == target
    ]


async def marker(admin: Any, world: Any, room_id: str, text: str) -> None:
    """A later Slack message has reached Matrix: whatever came before it has too."""
    world.fake.post_user_message(world.general.id, world.bob.id, text)
    await admin.wait_for_event(room_id, body_is(text))


async def test_slack_edits_replace_the_original_and_unfurls_are_not_edits(
    slack_bridge, slack_world, bridge_env, uid
):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    async with admin:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        msg = fake.post_user_message(w.general.id, w.bob.id, "see https://example.org")
        original = await admin.wait_for_event(room_id, body_is("see https://example.org"))
        fake.unfurl(w.general.id, msg.ts, "https://example.org", "Example Domain")
        fake.edit_message(w.general.id, msg.ts, "first edit")
        first = await admin.wait_for_event(room_id, replacing(original["event_id"], "first edit"))
        assert first["sender"] == w.ghost(w.bob)
        fake.edit_message(w.general.id, msg.ts, "second *edit*")
        second = await admin.wait_for_event(
            room_id, replacing(original["event_id"], "second *edit*")
        )
        # both target the original event, never the previous edit
        assert rel(second)["event_id"] == original["event_id"]
        assert "<strong>edit</strong>" in second["content"]["m.new_content"]["formatted_body"]
        fake.unfurl(w.general.id, msg.ts, "https://example.org/2", "Another")
        await marker(admin, w, room_id, "after the unfurl")
        assert len(edits_of(await admin.messages(room_id), original["event_id"])) == 2


async def test_slack_delete_redacts(slack_bridge, slack_world, bridge_env, uid):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        msg = fake.post_user_message(w.general.id, w.bob.id, "oops")
        evt = await admin.wait_for_event(room_id, body_is("oops"))
        fake.delete_message(w.general.id, msg.ts)
        redaction = await admin.wait_for_event(room_id, redacting(evt["event_id"]))
        assert redaction["sender"] == w.ghost(w.bob)
        # a Slack admin removes a relayed Matrix message: the bridge bot redacts it
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        relayed = await carol.send_text(room_id, "relayed, then removed on slack")
        await eventually(
            lambda: any(
                m.text == "relayed, then removed on slack" for m in fake.messages[w.general.id]
            )
        )
        slack_msg = next(
            m for m in fake.messages[w.general.id] if m.text == "relayed, then removed on slack"
        )
        fake.delete_message(w.general.id, slack_msg.ts)
        redaction = await admin.wait_for_event(room_id, redacting(relayed))
        assert redaction["sender"] != carol.user_id
        assert redaction["sender"].startswith("@") and "_slack_" not in redaction["sender"]


async def test_matrix_edits_and_redactions_reach_slack_without_echo(
    slack_bridge, slack_world, bridge_env, uid
):
    """The app's owner (posting as the app), a relayed user (posted by the app under their
    name) and a user with a personal login (posting as their Slack user) edit and delete."""
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    alice_mx = await bridge_env.synapse.register_user(uid("alice"))
    async with admin, carol, alice_mx:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        await login_user(slack_bridge, alice_mx, w, w.alice)
        for user in (carol, alice_mx):
            await admin.invite(room_id, user.user_id)
            await user.join(room_id)

        def on_slack(text: str) -> Any:
            return next((m for m in fake.messages[w.general.id] if m.text == text), None)

        sent: dict[str, str] = {}
        for who, user in (("admin", admin), ("carol", carol), ("alice", alice_mx)):
            sent[who] = await user.send_text(room_id, f"{who} typo")
            await eventually(lambda who=who: on_slack(f"{who} typo") is not None)
        assert on_slack("alice typo").user == w.alice.id  # as herself
        assert on_slack("carol typo").username  # relayed under her name
        # Slack's answers come after their events: the echoes are recognised all the same
        fake.answer_late("chat.update", 1.5, times=3)
        fake.answer_late("chat.delete", 1.5, times=3)
        for who, user in (("admin", admin), ("carol", carol), ("alice", alice_mx)):
            slack_msg = on_slack(f"{who} typo")
            await user.send_message(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": f"* {who} fixed",
                    "m.new_content": {"msgtype": "m.text", "body": f"{who} fixed"},
                    "m.relates_to": {"rel_type": "m.replace", "event_id": sent[who]},
                },
            )
            await eventually(lambda m=slack_msg, who=who: m.text == f"{who} fixed")
        await marker(admin, w, room_id, "after the edits")
        events = await admin.messages(room_id)
        for who in sent:  # Slack's message_changed for our own chat.update is not bridged back
            assert len(edits_of(events, sent[who])) == 1, who
        # her own later edit on Slack still comes through
        fake.edit_message(w.general.id, on_slack("alice fixed").ts, "alice, from slack")
        await admin.wait_for_event(room_id, replacing(sent["alice"], "alice, from slack"))
        sent_texts = {"admin": "admin fixed", "carol": "carol fixed", "alice": "alice, from slack"}
        for who, user in (("admin", admin), ("carol", carol), ("alice", alice_mx)):
            await user.redact(room_id, sent[who])
            await eventually(lambda who=who: on_slack(sent_texts[who]) is None)
        await marker(admin, w, room_id, "after the deletes")
        redactions = [e for e in await admin.messages(room_id) if e["type"] == "m.room.redaction"]
        assert len(redactions) == 3  # the three users' own; no echo redacted them again


async def test_emotes_both_ways(slack_bridge, slack_world, bridge_env, uid):
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, carol:
        await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        msg = fake.post_me_message(w.general.id, w.bob.id, "dances")
        evt = await admin.wait_for_event(room_id, body_is("dances"))
        assert evt["content"]["msgtype"] == "m.emote" and evt["sender"] == w.ghost(w.bob)
        fake.edit_message(w.general.id, msg.ts, "waves again")
        edited = await admin.wait_for_event(
            room_id,
            lambda e: (e["content"].get("m.new_content") or {}).get("body") == "waves again",
        )
        assert edited["content"]["m.new_content"]["msgtype"] == "m.emote"
        await admin.send_message(room_id, {"msgtype": "m.emote", "body": "nods"})
        await eventually(
            lambda: any(c.params.get("text") == "nods" for c in fake.calls("chat.meMessage"))
        )
        await admin.invite(room_id, carol.user_id)
        await carol.join(room_id)
        await carol.send_message(room_id, {"msgtype": "m.emote", "body": "shrugs"})
        await eventually(
            lambda: any(c.params.get("text") == "_shrugs_" for c in fake.calls("chat.postMessage"))
        )


async def test_an_edit_seen_by_two_app_logins_is_bridged_once(
    slack_bridge, slack_world, bridge_env, uid
):
    """mautrix-slack bridged an edit once per logged-in user: the same message_changed
    reaching both app logins of the workspace (each delivery with its own event id) makes
    one Matrix edit."""
    w, fake = slack_world, slack_world.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    admin2 = await bridge_env.synapse.register_user(uid("admin2"))
    async with admin, admin2:
        first = await login_app(slack_bridge, admin, w)
        room_id = await open_channel(slack_bridge, w, admin, w.general, w.bob)
        second = await login_app(slack_bridge, admin2, w)
        msg = fake.post_user_message(w.general.id, w.bob.id, "edit me once")
        original = await admin.wait_for_event(room_id, body_is("edit me once"))
        payload = fake.edit_message(w.general.id, msg.ts, "edited once")
        await admin.wait_for_event(room_id, replacing(original["event_id"], "edited once"))
        for client in (first, second):
            again = copy.deepcopy(payload)
            again["event_id"] = f"Ev{uid('x').upper()}"
            await connector(slack_bridge).receive(client, again)
        await marker(admin, w, room_id, "after the deliveries")
        assert len(edits_of(await admin.messages(room_id), original["event_id"])) == 1
