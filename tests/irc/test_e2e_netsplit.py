"""A real netsplit: two InspIRCd servers linked with m_spanningtree, the leaf killed and
started again while the bridge watches from the hub."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridges.irc.names import casefold
from tests.harness.inspircd import InspIRCd, IrcTestClient, link_servers, require_inspircd
from tests.irc.e2e import ghost, irc_user, member_event, open_channel, start_bridge

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent

HUB, LEAF = "hub.test", "leaf.test"
SPLIT_REASON = f"{HUB} {LEAF}"
DELAY = 15.0  # netsplit_debounce: long enough for the leaf and its users to come back


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[InspIRCd, InspIRCd]]:
    """``hub.test`` and ``leaf.test``, linked (the leaf reconnects to the hub every second)."""
    require_inspircd()
    hub = InspIRCd(tmp_path / "hub", flood_control=False, server_name=HUB, server_id="1HB")
    leaf = InspIRCd(tmp_path / "leaf", flood_control=False, server_name=LEAF, server_id="2LF")
    link_servers(hub, leaf)
    try:
        hub.start()
        leaf.start()
        hub.wait_linked(LEAF)
        yield hub, leaf
    finally:
        leaf.stop()
        hub.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[IrcTestClient]]:
    """IRC users to close at the end, whatever happened."""
    opened: list[IrcTestClient] = []
    yield opened
    for client in opened:
        await client.close()


def split_quit(nick: str):
    return lambda m: (
        m.command == "QUIT"
        and casefold(m.nick or "") == casefold(nick)
        and m.trailing == SPLIT_REASON
    )


def joined(nick: str):
    return lambda m: m.command == "JOIN" and casefold(m.nick or "") == casefold(nick)


async def test_linked_servers_split_and_heal(network):
    hub, leaf = network
    assert hub.links() == {HUB, LEAF}
    async with IrcTestClient.connected(hub.host, hub.port, "watcher") as watcher:
        async with IrcTestClient.connected(leaf.host, leaf.port, "leafuser") as user:
            await watcher.join("#split")
            await user.join("#split")
            await watcher.wait_for(joined("leafuser"))
            await asyncio.to_thread(leaf.kill)
            await watcher.wait_for(split_quit("leafuser"), 10)
        assert hub.links() == {HUB}
        await asyncio.to_thread(leaf.start)
        await asyncio.to_thread(hub.wait_linked, LEAF)


async def test_a_netsplit_holds_leaves_back_and_drops_them_in_one_batch(
    make_bridge, bridge_env, uid, network, clients
):
    hub, leaf = network
    await start_bridge(make_bridge, hub, netsplit_debounce=DELAY)  # the bridge is on the hub
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(hub, uid("bob"), channel)  # keeps the channel alive on the hub
    clients.append(bob)
    returning = [uid("carol"), uid("dave")]
    lost = [uid("erin"), uid("frank")]
    for nick in returning + lost:
        clients.append(await irc_user(leaf, nick, channel))
    async with alice:
        room_id, _ = await open_channel(alice, channel, bob)
        for nick in returning + lost:
            await alice.wait_for_event(room_id, member_event(ghost(nick), "join"), 20)

        split_at = time.time()
        await asyncio.to_thread(leaf.kill)
        for nick in returning + lost:
            await bob.wait_for(split_quit(nick), 15)
        # The leaf comes back and some of its users with it, well within the delay.
        await asyncio.to_thread(leaf.start)
        await asyncio.to_thread(hub.wait_linked, LEAF)
        for nick in returning:
            clients.append(await irc_user(leaf, nick, channel))
            await bob.wait_for(joined(nick), 15)
        assert time.time() - split_at < DELAY - 2, "too slow to prove anything"
        # Nobody has left the Matrix room yet.
        assert not [e for e in alice.history(room_id) if _leave_of_any(e, returning + lost)]

        # After the delay the users who stayed away leave, together, saying why.
        leaves = [
            await alice.wait_for_event(room_id, member_event(ghost(nick), "leave"), DELAY + 20)
            for nick in lost
        ]
        stamps = [e["origin_server_ts"] / 1000 for e in leaves]
        assert min(stamps) >= split_at + DELAY - 1  # held back for the whole delay
        assert max(stamps) - min(stamps) < 2  # one batch
        assert all(e["content"].get("reason") == f"netsplit: {SPLIT_REASON}" for e in leaves)
        # Those who came back in time never left the room.
        await bob.privmsg(channel, "after the split")
        await alice.wait_for_event(room_id, lambda e: e["content"].get("body") == "after the split")
        assert not [e for e in alice.history(room_id) if _leave_of_any(e, returning)]
        members = await alice.joined_members(room_id)
        assert all(ghost(nick) in members for nick in returning)
        assert not any(ghost(nick) in members for nick in lost)


def _leave_of_any(event: dict, nicks: list[str]) -> bool:
    return any(member_event(ghost(nick), "leave")(event) for nick in nicks)
