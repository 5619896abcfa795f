"""XMPP file links (XEP-0066) from untrusted users, end to end through Prosody and Synapse: only
allow-listed or public addresses are fetched, nothing of an internal service reaches the room,
sizes and time are capped, and a link that never answers does not hold the room."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from bridgekit.testing.media_servers import PNG, SECRET, media_servers
from tests.helpers import management_room
from tests.xmpp.conftest import ghost, xmpp_networks
from tests.xmpp.helpers import add
from tests.xmpp.test_e2e_muc import open_muc_portal

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

OOB = "jabber:x:oob"
TIMEOUT = 2


def send_link(
    client: Any, to: str, link: str, body: str | None = None, mtype: str = "groupchat"
) -> None:
    msg = client.make(to, body if body is not None else link, mtype=mtype)
    x = add(msg, OOB, "x")
    url = x.makeelement(f"{{{OOB}}}url", {})
    url.text = link
    x.append(url)
    msg.send()


async def media_bridge(make_bridge: Any, prosody: Any, good_port: int) -> Any:
    bridge = await make_bridge(
        networks=xmpp_networks(prosody),
        media={"allow": [f"127.0.0.1:{good_port}"], "max_size": 256 * 1024, "timeout": TIMEOUT},
    )
    connector = bridge.connectors["xmpp"]
    assert await connector.component.wait_online(15), connector.component.last_error
    return bridge


async def test_oob_links_to_internal_services_never_reach_matrix(
    make_bridge, prosody, bridge_env, xmpp_clients, uid
):
    async with media_servers(big_size=4 * 1024 * 1024) as s:
        bridge = await media_bridge(make_bridge, prosody, s.good_port)
        bob, alice, room, room_id, _ = await open_muc_portal(
            bridge, prosody, bridge_env, xmpp_clients, uid
        )
        bob_ghost = ghost(f"{room}/Bob")

        def from_bob_about(link: str):
            return lambda e: (
                e.get("type") == "m.room.message"
                and e.get("sender") == bob_ghost
                and link in e.get("content", {}).get("body", "")
            )

        async with alice:
            refused = {
                f"{s.bait}/status": "not public",  # the bait itself, on loopback
                f"http://localhost:{s.bait_port}/status": "not public",  # by name
                f"{s.good}/to-bait.png": "not public",  # an allowed server redirecting to it
                f"{s.good}/big.png": "larger than 256 KiB",  # too large (Content-Length)
                f"{s.good}/unsized.png": "larger than 256 KiB",  # too large (counted)
                f"{s.good}/short.png": "could not download",  # cut off while streamed
            }
            for link in refused:
                send_link(bob, room, link)
            for link, why in refused.items():
                evt = await alice.wait_for_event(room_id, from_bob_about(link))
                content = evt["content"]
                # The bare link and why, as text: no file was uploaded.
                assert content["msgtype"] == "m.text" and "url" not in content, content
                assert why in content["body"], content["body"]
            # The allow-listed server's files arrive as files: one with its size announced
            # (streamed to the homeserver), one without (counted into a buffer first). The
            # text of each (a body that is not the link) is its own event, just before it.
            images = []
            for path, caption in (("/cat.png", "a cat"), ("/chunked-cat.png", "a chunked cat")):
                send_link(bob, room, f"{s.good}{path}", body=caption)
                image = await alice.wait_for_event(
                    room_id,
                    lambda e, p=path: (
                        e.get("sender") == bob_ghost
                        and e.get("content", {}).get("msgtype") == "m.image"
                        and e["content"].get("body") == p[1:]
                    ),
                )
                history = alice.history(room_id)
                # The message just before it (a state event, such as the ghost's member event
                # after a profile refresh, may come between: it is no message).
                messages = [e for e in history if e.get("type") == "m.room.message"]
                before = messages[messages.index(image) - 1]
                assert (before["sender"], before["content"]["body"]) == (bob_ghost, caption)
                images.append(image)
                server, media_id = image["content"]["url"][len("mxc://") :].split("/", 1)
                async with aiohttp.ClientSession() as http:
                    async with http.get(
                        f"{bridge_env.synapse.base_url}/_matrix/client/v1/media/download/"
                        f"{server}/{media_id}",
                        headers={"Authorization": f"Bearer {alice.access_token}"},
                    ) as resp:
                        assert resp.status == 200 and await resp.read() == PNG
            # Nothing of the bait was ever requested, let alone posted.
            assert s.bait_hits == []
            for evt in alice.history(room_id):
                assert SECRET.decode() not in str(evt)
                if evt.get("type") == "m.room.message" and evt not in images:
                    assert "url" not in evt["content"], evt


async def test_a_link_that_never_answers_holds_the_room_only_until_the_timeout(
    make_bridge, prosody, bridge_env, xmpp_clients, uid
):
    async with media_servers() as s:
        bridge = await media_bridge(make_bridge, prosody, s.good_port)
        bob, alice, room, room_id, _ = await open_muc_portal(
            bridge, prosody, bridge_env, xmpp_clients, uid
        )
        async with alice:
            hang = f"{s.good}/hang.png"
            start = time.monotonic()
            send_link(bob, room, hang)
            bob.say(room, "said after the hanging link")
            later = await alice.wait_for_event(
                room_id, lambda e: e.get("content", {}).get("body") == "said after the hanging link"
            )
            elapsed = time.monotonic() - start
            assert elapsed < TIMEOUT + 5, elapsed
            history = alice.history(room_id)
            link_evt = next(e for e in history if hang in e.get("content", {}).get("body", ""))
            assert f"no answer within {TIMEOUT} s" in link_evt["content"]["body"]
            # The room's order holds: the link's stand-in comes first.
            assert history.index(link_evt) < history.index(later)
            assert s.hang_hits == ["/hang.png"]


async def test_oob_link_in_a_one_to_one_chat_is_guarded_too(
    make_bridge, prosody, bridge_env, xmpp_clients, uid
):
    async with media_servers() as s:
        bridge = await media_bridge(make_bridge, prosody, s.good_port)
        alice = await bridge_env.synapse.register_user(uid("alice"))
        async with alice:
            conv = await management_room(alice, bridge)
            assert "nick" in await conv.say("login xmpp")
            assert "Logged in" in await conv.say("Alice")
            jid = bridge.connectors["xmpp"].puppets.jid_for(alice.user_id)
            bob = await xmpp_clients(prosody, uid("bob"))
            bait = f"http://[::ffff:127.0.0.1]:{s.bait_port}/status"
            send_link(bob, jid, bait, mtype="chat")
            room_id, _ = await alice.wait_for_invite()
            await alice.join(room_id)
            evt = await alice.wait_for_event(
                room_id, lambda e: bait in e.get("content", {}).get("body", "")
            )
            assert evt["sender"] == ghost(bob.jid)
            assert evt["content"]["msgtype"] == "m.text" and "url" not in evt["content"]
            assert "not public" in evt["content"]["body"]
            assert s.bait_hits == []
