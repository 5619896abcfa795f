"""Relay mode for a network that shows senders itself (Discord webhooks, Slack ``username``):
the connector gets ``relay_sender`` (a clean name and a fetchable avatar link) and the content
as written, for messages, emotes and edits. Without the capability the lines stay labelled
(test_e2e_portals.py::test_relay_mode, and IRC's and XMPP's relay tests)."""

from __future__ import annotations

import aiohttp
import pytest

from bridgekit.bridge import Bridge
from bridgekit.testing.fake import FakeRenderingClient
from bridgekit.testing.ports import free_port
from tests.conftest import BridgeEnv
from tests.helpers import fake, give_power, login, open_portal
from tests.test_e2e_media_status import upload

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

#: A room name meant to break labels and lines: a newline, a bidi override, a bell, a
#: zero-width space, and far more characters than any label keeps.
HOSTILE = "Carol\n<bob> I am bob\u202e\x07\u200b " + "x" * 150


async def _relay_scene(bridge: Bridge, bridge_env: BridgeEnv, uid, alice, carol) -> tuple:
    client = await login(bridge, alice, uid("a"))
    chat = uid("chat")
    net = fake(bridge).network
    net.add_chat(chat, members=[client.login.remote_id, "bob"])
    room_id = await open_portal(bridge, alice, client, chat)
    await alice.invite(room_id, carol.user_id)
    await carol.join(room_id)
    await give_power(bridge, room_id, alice.user_id, 50)
    await alice.send_text(room_id, "!set-relay")
    await alice.wait_for_event(
        room_id, lambda e: "now relayed" in e.get("content", {}).get("body", "")
    )
    return client, net, room_id


async def test_network_that_renders_senders_gets_relay_sender_and_untouched_content(
    make_bridge, bridge_env: BridgeEnv, uid
):
    media_port = free_port()
    bridge = await make_bridge(
        media={"hostname": "127.0.0.1", "port": media_port},
        **{"networks.fake.renders_relay_sender": True},
    )
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))  # no login of her own
    async with alice, carol:
        client, net, room_id = await _relay_scene(bridge, bridge_env, uid, alice, carol)
        assert isinstance(client, FakeRenderingClient)
        avatar = b"\x89PNG carol's face " * 40
        mxc = await upload(bridge_env.synapse.base_url, carol.access_token, avatar, "carol.png")
        member = {"membership": "join", "displayname": HOSTILE, "avatar_url": mxc}
        await carol.send_state(room_id, "m.room.member", carol.user_id, member)
        await alice.wait_for_event(
            room_id,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == carol.user_id
                and e.get("content", {}).get("avatar_url") == mxc
            ),
        )
        html = "<b>one</b><br>&lt;bob&gt; two"
        eid = await carol.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "**one**\n<bob> two",
                "format": "org.matrix.custom.html",
                "formatted_body": html,
            },
        )
        first = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == eid)
        msg = first.data
        assert first.login_id == client.login.id and msg.relayed_for == carol.user_id
        # The content as carol wrote it: no label, formatting kept.
        assert msg.content.body == "**one**\n<bob> two"
        assert msg.content.html == html
        assert msg.relay is None
        sender = msg.relay_sender
        assert sender is not None and sender.mxid == carol.user_id
        # The name is the room's member name, cleaned: one line, no control or format
        # characters, bounded.
        assert sender.displayname.startswith("Carol <bob> I am bob")
        assert "\n" not in sender.displayname and "\x07" not in sender.displayname
        assert "\u202e" not in sender.displayname and "\u200b" not in sender.displayname
        assert len(sender.displayname) <= 64
        # The avatar is a link the network can open without a token, on the media listener,
        # and it serves carol's image.
        assert sender.avatar_url is not None
        assert sender.avatar_url.startswith(f"http://127.0.0.1:{media_port}/_bridgekit/media/")
        async with aiohttp.ClientSession() as http, http.get(sender.avatar_url) as resp:
            assert resp.status == 200
            assert await resp.read() == avatar

        # An emote stays an emote, unlabelled.
        emote = await carol.send_message(room_id, {"msgtype": "m.emote", "body": "waves"})
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == emote)
        assert sent.data.content.msgtype == "m.emote"
        assert sent.data.content.body == "waves"
        assert sent.data.relay_sender is not None and sent.data.relay is None

        # An edit of the relayed message is an edit (the network shows who), not a new line.
        edit = await carol.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* fixed",
                "m.new_content": {"msgtype": "m.text", "body": "fixed"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": eid},
            },
        )
        sent = await net.wait_for(lambda i: i.kind == "edit" and i.data.event_id == edit)
        assert sent.data.target_id == first.remote_id
        assert sent.data.content.body == "fixed"
        assert sent.data.relayed_for == carol.user_id
        assert sent.data.relay_sender is not None
        assert sent.data.relay_sender.avatar_url == sender.avatar_url

        # Deleting the relayed message deletes it on the network (the relay posted it).
        await carol.redact(room_id, eid)
        sent = await net.wait_for(
            lambda i: i.kind == "redaction" and i.data.target_id == first.remote_id
        )
        assert sent.data.relayed_for == carol.user_id


async def test_without_the_capability_relayed_lines_stay_labelled(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    """Without the capability (the default fake, like IRC and XMPP) the lines are labelled
    and ``relay_sender`` is never set; a relayed edit is the labelled ``* text`` line."""
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with alice, carol:
        client, net, room_id = await _relay_scene(bridge, bridge_env, uid, alice, carol)
        assert not isinstance(client, FakeRenderingClient)
        eid = await carol.send_text(room_id, "relay me")
        sent = await net.wait_for(lambda i: i.kind == "message" and i.data.event_id == eid)
        name = carol.user_id[1:].split(":")[0]
        assert sent.data.content.body == f"<{name}> relay me"
        assert sent.data.relay_sender is None and sent.data.relay is not None
        edit = await carol.send_message(
            room_id,
            {
                "msgtype": "m.text",
                "body": "* fixed",
                "m.new_content": {"msgtype": "m.text", "body": "fixed"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": eid},
            },
        )
        sent = await net.wait_for(
            lambda i: i.kind == "message" and i.data.event_id == edit, timeout=20
        )
        assert sent.data.content.body == f"<{name}> * fixed"
        assert sent.data.relay_sender is None
        assert not [i for i in net.sent if i.kind == "edit"]
        # Nor is a relayed message deleted there (it carries the relay's label, not carol).
        await carol.redact(room_id, eid)
        await alice.send_text(room_id, "after the redaction")
        await net.wait_for(
            lambda i: i.kind == "message" and i.data.content.body == "after the redaction"
        )
        assert not [i for i in net.sent if i.kind == "redaction"]
