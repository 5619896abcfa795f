"""A backlog of lines from one sender goes to Matrix as one event, in order, losing nothing."""

from __future__ import annotations

import asyncio
import time

from bridgekit.bridge import Bridge
from bridgekit.contract.events import PortalKey
from tests.conftest import BridgeEnv, eventually
from tests.helpers import fake, ghost, portal_scene


def lines_of(events: list[dict], senders: set[str]) -> list[str]:
    """Every line the senders said, in timeline order (open_portal's greeting left out)."""
    out: list[str] = []
    for e in events:
        if e.get("type") == "m.room.message" and e.get("sender") in senders:
            out.extend(e["content"]["body"].split("\n"))
    return [line for line in out if line != "hello from the remote side"]


async def test_a_backlog_of_lines_is_merged_in_order_and_replies_find_any_line(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    fake(bridge).merge_backlog = True
    try:
        async with portal_scene(bridge, bridge_env, uid) as scene:
            alice, client, chat, room_id, _ = scene
            lines = [f"line {i:02d}" for i in range(40)]
            # Queued all at once, as a paste arrives: the room is busy sending the first
            # while the rest wait, so they are merged; carol's line in between stays between.
            ids = await asyncio.gather(
                *(client.remote_message(chat, "bob", t) for t in lines[:20]),
                client.remote_message(chat, "carol", "interjection"),
                *(client.remote_message(chat, "bob", t) for t in lines[20:]),
            )
            await alice.wait_for_event(
                room_id, lambda e: "line 39" in e.get("content", {}).get("body", "")
            )
            events = await alice.messages(room_id, limit=100)
            senders = {ghost("bob"), ghost("carol")}
            assert lines_of(events, senders) == lines[:20] + ["interjection"] + lines[20:]
            sent = [
                e
                for e in events
                if e.get("sender") in senders
                and str(e["content"].get("body", "")).startswith(("line", "inter"))
            ]
            assert len(sent) < 41, "nothing was merged"
            assert "line 19" not in next(
                e["content"]["body"] for e in sent if "line 20" in e["content"]["body"]
            ), "a merge crossed carol's line"

            # The portal's newest remote id is the newest line, merged or not: catching up
            # after a reconnect asks for what came after it.
            async def newest_is_the_last_line() -> bool:
                return await bridge.store.last_remote_message("fake", PortalKey(chat)) == ids[-1]

            await eventually(newest_is_the_last_line)

            # A reply to a line inside a merged event points at that event.
            await client.remote_message(chat, "carol", "re: five", reply_to=ids[5])
            reply = await alice.wait_for_event(
                room_id, lambda e: e.get("content", {}).get("body") == "re: five"
            )
            holder = next(e for e in sent if "line 05" in e["content"]["body"].split("\n"))
            in_reply_to = reply["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
            assert in_reply_to == holder["event_id"]
    finally:
        fake(bridge).merge_backlog = False


async def test_without_merging_each_line_is_its_own_event(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    async with portal_scene(bridge, bridge_env, uid) as scene:
        alice, client, chat, room_id, _ = scene
        lines = [f"solo {i}" for i in range(8)]
        await asyncio.gather(*(client.remote_message(chat, "bob", t) for t in lines))
        await alice.wait_for_event(room_id, lambda e: e.get("content", {}).get("body") == "solo 7")
        events = await alice.messages(room_id, limit=50)
        bodies = [
            e["content"]["body"]
            for e in events
            if e.get("sender") == ghost("bob") and e["type"] == "m.room.message"
        ]
        assert bodies[-8:] == lines and len(bodies) == 9  # the greeting, then one per line


def bodies_of(events: list[dict], sender: str, prefix: str) -> list[str]:
    return [
        e["content"]["body"]
        for e in events
        if e.get("sender") == sender
        and e["type"] == "m.room.message"
        and e["content"]["body"].startswith(prefix)
    ]


async def stream(client, chat: str, sender: str, lines: list[str], gap: float = 0.02) -> None:
    """Lines from one sender closer together than STREAM_GAP, as a paste or a bot sends them."""
    for t in lines:
        await client.remote_message(chat, sender, t)
        await asyncio.sleep(gap)


async def test_a_stream_of_lines_waits_for_its_rest_but_a_lone_line_goes_at_once(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    fake(bridge).merge_backlog = True
    bridge.stream_hold.hold = 3.0  # long, so that what it holds back shows
    try:
        async with portal_scene(bridge, bridge_env, uid) as scene:
            alice, client, chat, room_id, _ = scene
            start = time.monotonic()
            await client.remote_message(chat, "bob", "alone")
            await alice.wait_for_event(room_id, lambda e: e["content"].get("body") == "alone")
            assert time.monotonic() - start < 2.0, "a lone line was held"

            await asyncio.sleep(0.5)  # bob pauses: the paste below starts a new stream
            lines = [f"paste {i:02d}" for i in range(12)]
            await stream(client, chat, "bob", lines)
            await alice.wait_for_event(
                room_id, lambda e: "paste 11" in e.get("content", {}).get("body", "")
            )
            sent = bodies_of(await alice.messages(room_id, limit=50), ghost("bob"), "paste")
            assert "\n".join(sent).split("\n") == lines
            # The paste's first line goes out at once; the rest waits for the paste to end
            # (bob pauses) instead of leaving in pieces as each send finishes.
            assert sent[0] == "paste 00"
            assert len(sent) <= 3, sent
    finally:
        fake(bridge).merge_backlog = False
        bridge.stream_hold.hold = 0.25


async def test_someone_elses_line_ends_a_hold_at_once_and_keeps_its_place(
    bridge: Bridge, bridge_env: BridgeEnv, uid
):
    fake(bridge).merge_backlog = True
    bridge.stream_hold.hold = 3.0
    try:
        async with portal_scene(bridge, bridge_env, uid) as scene:
            alice, client, chat, room_id, _ = scene
            await client.remote_message(chat, "bob", "warm-up")
            await alice.wait_for_event(room_id, lambda e: e["content"].get("body") == "warm-up")
            first = [f"bot {i:02d}" for i in range(6)]
            more = [f"bot {i:02d}" for i in range(6, 66)]
            await stream(client, chat, "bob", first, gap=0.01)
            await client.remote_message(chat, "carol", "carol here")
            rest = asyncio.create_task(stream(client, chat, "bob", more))
            try:
                await alice.wait_for_event(
                    room_id, lambda e: e.get("content", {}).get("body") == "carol here"
                )
                # bob goes on streaming, but his later lines cannot join the merge ahead of
                # carol's line: the hold ends when her line arrives, not when bob pauses.
                assert not rest.done(), "carol's line waited for bob's stream to end"
            finally:
                await rest
            await alice.wait_for_event(
                room_id, lambda e: "bot 65" in e.get("content", {}).get("body", "")
            )
            events = await alice.messages(room_id, limit=120)
            said = lines_of(events, {ghost("bob"), ghost("carol")})
            assert said[said.index("bot 00") :] == [*first, "carol here", *more]
    finally:
        fake(bridge).merge_backlog = False
        bridge.stream_hold.hold = 0.25
