"""Reactions both ways: Discord's unicode and custom emoji (custom ones as images on Matrix,
from the cdn, a media host), removals, one reaction however many bot logins see it; Matrix
reactions of personal logins to Discord (unicode, or a custom emoji the bridge reported),
taken back on redaction, never doubled by their echo; relayed users' reactions are not
bridged (a webhook cannot react). Fake Discord <-> bridge <-> real Synapse."""

from __future__ import annotations

import pytest

from bridgekit.contract.events import RemoteReaction, RemoteReactionRemove
from bridgekit.testing.media_servers import PNG
from bridges.discord.ids import portal_key
from tests.conftest import eventually
from tests.discord.conftest import body_is, connector, login_bot, open_channel
from tests.discord.personal_helpers import login_user, portal_room
from tests.harness.discord_fake import MANAGE_WEBHOOKS

pytestmark = pytest.mark.engine_independent

SHORTCODE = "com.beeper.reaction.shortcode"


def reaction_to(event_id: str, sender: str | None = None):
    def check(e) -> bool:
        rel = e.get("content", {}).get("m.relates_to", {})
        return (
            e.get("type") == "m.reaction"
            and rel.get("event_id") == event_id
            and (sender is None or e["sender"] == sender)
        )

    return check


def reactions_by(events, sender: str) -> list[dict]:
    """``sender``'s m.reaction events in the room, redacted ones too (their content is gone)."""
    return [e for e in events if e.get("type") == "m.reaction" and e["sender"] == sender]


def redacted(events, event_id: str) -> bool:
    return any(e.get("type") == "m.room.redaction" and e.get("redacts") == event_id for e in events)


async def test_discord_reactions_reach_matrix_once_even_with_two_bots(
    discord_bridge, discord_world, bridge_env, uid, monkeypatch
):
    w = discord_world
    fake = w.fake
    # A second bot (another admin's) in the same guild, bridging it too.
    bot2 = fake.add_bot("Second Bot")
    role = fake.add_role(w.guild, "bridge2", permissions=MANAGE_WEBHOOKS)
    fake.add_member(w.guild, bot2, roles=[role])
    admin = await bridge_env.synapse.register_user(uid("admin"))
    admin2 = await bridge_env.synapse.register_user(uid("admin2"))
    async with admin, admin2:
        await login_bot(discord_bridge, admin, w)
        w2 = type(w)(fake, bot2, w.guild, w.alice, w.bob, w.general)
        await login_bot(discord_bridge, admin2, w2)
        room_id = await open_channel(w, admin, w.general, w.bob)
        api = connector(discord_bridge).bridge
        real_queue = api.queue_remote_event
        queued: list = []

        async def spy(login_id, event):
            if isinstance(event, RemoteReaction | RemoteReactionRemove):
                queued.append(event)
            await real_queue(login_id, event)

        monkeypatch.setattr(api, "queue_remote_event", spy)
        sent = await fake.send_message(w.general, w.bob, "react to this")
        evt = await admin.wait_for_event(room_id, body_is("react to this"))
        await fake.add_reaction(w.general, sent["id"], w.alice, "👍")
        got = await admin.wait_for_event(room_id, reaction_to(evt["event_id"]))
        assert got["sender"] == w.ghost(w.alice)
        assert got["content"]["m.relates_to"]["key"] == "👍"
        # A custom emoji: its image from the cdn, reacted as its mxc with its shortcode.
        fake.add_image("777000111222333444", PNG)
        custom = {"id": "777000111222333444", "name": "party"}
        await fake.add_reaction(w.general, sent["id"], w.bob, custom)
        party = await admin.wait_for_event(room_id, reaction_to(evt["event_id"], w.ghost(w.bob)))
        assert party["content"]["m.relates_to"]["key"].startswith("mxc://")
        assert party["content"][SHORTCODE] == ":party:"
        assert any("/emojis/777000111222333444" in r for r in fake.cdn_requests)
        # Removals, both kinds.
        await fake.remove_reaction(w.general, sent["id"], w.alice, "👍")
        await fake.remove_reaction(w.general, sent["id"], w.bob, "party:777000111222333444")
        await eventually(
            lambda: (
                redacted(admin.history(room_id), got["event_id"])
                and redacted(admin.history(room_id), party["event_id"])
            ),
            timeout=20,
        )
        # Again: a reaction added back is shown again (nothing late from the other bot).
        await fake.add_reaction(w.general, sent["id"], w.alice, "👍")
        await fake.send_message(w.general, w.bob, "marker")
        await admin.wait_for_event(room_id, body_is("marker"))
        events = await admin.messages(room_id)
        thumbs = reactions_by(events, w.ghost(w.alice))
        # two over time: the first (redacted, its key gone) and the live one
        assert len(thumbs) == 2
        live = [e for e in thumbs if e["content"].get("m.relates_to")]
        assert len(live) == 1
        # Both bots received each of the 5 reaction events; one of them bridged them.
        assert len(queued) == 5


async def test_matrix_reactions_of_a_personal_login_go_to_discord(
    dp_bridge, discord_world, bridge_env, uid
):
    w = discord_world
    fake = w.fake
    admin = await bridge_env.synapse.register_user(uid("admin"))
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with admin, alice, carol:
        await login_bot(dp_bridge, admin, w)
        await login_user(dp_bridge, alice, fake, w.alice)
        room_id = await open_channel(w, admin, w.general, w.bob)
        for user in (alice, carol):
            await admin.invite(room_id, user.user_id)
            await user.join(room_id)
        sent = await fake.send_message(w.general, w.bob, "react here")
        evt = await alice.wait_for_event(room_id, body_is("react here"))
        fake.echo_before_reply = True
        mine = await alice.react(room_id, evt["event_id"], "🎉")
        await eventually(
            lambda: w.alice.id in fake.find_message(sent["id"]).reactions.get("🎉", [])
        )
        put = fake.requests_to("PUT", f"/channels/{w.general.id}/messages/{sent['id']}/reactions/*")
        assert [r.headers["Authorization"] for r in put] == [w.alice.token]
        # A relayed user's reaction is not bridged: a webhook cannot react.
        await carol.react(room_id, evt["event_id"], "👀")
        # A custom emoji the bridge reported, used from Matrix by its mxc.
        fake.add_image("888000111222333444", PNG)
        await fake.add_reaction(
            w.general, sent["id"], w.bob, {"id": "888000111222333444", "name": "blob"}
        )
        blob = await alice.wait_for_event(room_id, reaction_to(evt["event_id"], w.ghost(w.bob)))
        mxc = blob["content"]["m.relates_to"]["key"]
        await alice.react(room_id, evt["event_id"], mxc)
        await eventually(
            lambda: (
                w.alice.id in fake.find_message(sent["id"]).reactions.get("888000111222333444", [])
            )
        )
        # Taken back on Matrix: taken back on Discord.
        await alice.redact(room_id, mine)
        await eventually(lambda: w.alice.id not in fake.find_message(sent["id"]).reactions["🎉"])
        await fake.send_message(w.general, w.bob, "marker")
        await alice.wait_for_event(room_id, body_is("marker"))
        message = fake.find_message(sent["id"])
        assert "👀" not in message.reactions
        # The echoes of Alice's reactions came back through the bot: not reacted again.
        events = await alice.messages(room_id)
        by_alice = reactions_by(events, alice.user_id)
        assert len(by_alice) == 2  # 🎉 (redacted since) and the custom emoji
        # Alice reacting on her Discord app: from her Matrix account (double puppet).
        await fake.add_reaction(w.general, sent["id"], w.alice, "❤")
        heart = await alice.wait_for_event(
            room_id,
            lambda e: (
                reaction_to(evt["event_id"], alice.user_id)(e)
                and e["content"]["m.relates_to"]["key"] == "❤"
            ),
        )
        assert heart["sender"] == alice.user_id


async def test_reactions_in_a_dm_both_ways(dp_bridge, discord_world, bridge_env, uid):
    w = discord_world
    fake = w.fake
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        own = await login_user(dp_bridge, alice, fake, w.alice)
        dm = fake.add_dm(w.alice, w.bob)
        sent = await fake.send_message(dm, w.bob, "dm to react to")
        room_id = await portal_room(dp_bridge, alice, portal_key(dm.id, own.login.id))
        evt = await alice.wait_for_event(room_id, body_is("dm to react to"))
        await fake.add_reaction(dm, sent["id"], w.bob, "🔥")
        fire = await alice.wait_for_event(room_id, reaction_to(evt["event_id"], w.ghost(w.bob)))
        assert fire["content"]["m.relates_to"]["key"] == "🔥"
        await alice.react(room_id, evt["event_id"], "💯")
        await eventually(
            lambda: w.alice.id in fake.find_message(sent["id"]).reactions.get("💯", [])
        )
        # Text is not an emoji on Discord: refused, nothing sent.
        await alice.react(room_id, evt["event_id"], "lol")
        await fake.remove_reaction(dm, sent["id"], w.bob, "🔥")
        await eventually(lambda: redacted(alice.history(room_id), fire["event_id"]), timeout=20)
        assert not fake.requests_to("PUT", "*/reactions/lol/@me")
