"""Spaces: a connector names each chat's container (``ChatInfo.parent``); the runtime makes one
space room per container, links its portals both ways, invites the logged-in user, unlinks a
deleted portal, and makes no second space after a restart (fake connector, real Synapse)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest

from bridgekit.bridge import Bridge
from bridgekit.contract.events import ChatInfo, PortalKey, RemoteChatResync, SpaceInfo
from bridgekit.testing.matrix_client import MatrixError, MatrixTestClient
from tests.conftest import BridgeEnv, eventually
from tests.helpers import admin_client, fake, give_power, login, notice_says


async def space_rows(bridge: Bridge) -> list[Any]:
    return list(await bridge.db.fetch("SELECT * FROM space"))


async def linked_space(bridge: Bridge, chat: str, login_id: str = "") -> str:
    """The space room ``chat``'s portal is linked into (its container's, or ``login_id``'s
    personal space), once it is."""
    found: list[str] = []

    async def linked() -> bool:
        space = await bridge.spaces.space_of("fake", PortalKey(chat), login_id)
        if space:
            found.append(space)
        return bool(space)

    await eventually(linked, timeout=30)
    return found[-1]


def is_space_invite(e: dict[str, Any]) -> bool:
    return e.get("type") == "m.room.create" and e.get("content", {}).get("type") == "m.space"


async def space_invites(user: MatrixTestClient) -> set[str]:
    """Rooms ``user`` was invited to whose invite state says they are spaces."""
    await asyncio.sleep(0)
    return {
        rid
        for rid, events in user._history.items()
        if any(is_space_invite(e) and e.get("_stripped_invite_state") for e in events)
    }


async def test_portals_of_one_container_share_one_space(
    make_bridge, bridge_env: BridgeEnv, uid
) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    admin = await admin_client(bridge_env.synapse)
    async with alice, admin:
        client = await login(bridge, alice, uid("a"))
        net = fake(bridge).network
        workspace = SpaceInfo(uid("ws"), name="Acme workspace", topic="all of Acme")
        chats = [uid("general"), uid("random")]
        for chat in chats:
            net.add_chat(chat, members=[client.login.remote_id, "bob"], parent=workspace)
        # Both portals of the new container are created at once (different portal queues).
        await asyncio.gather(*(client.remote_message(c, "bob", "hi") for c in chats))
        spaces = {await linked_space(bridge, c) for c in chats}
        assert len(spaces) == 1
        space = spaces.pop()
        assert len(await space_rows(bridge)) == 1

        # The space: a space room, named as the connector said, that alice is invited to.
        await alice.wait_for_event(space, lambda e: is_space_invite(e))
        await alice.join(space)
        create = await alice.get_state(space, "m.room.create")
        assert create.get("type") == "m.space"
        assert (await alice.get_state(space, "m.room.name"))["name"] == "Acme workspace"
        assert (await alice.get_state(space, "m.room.topic"))["topic"] == "all of Acme"
        rooms = {}
        for chat in chats:
            portal = await bridge.store.get_portal("fake", PortalKey(chat))
            assert portal is not None and portal.mxid
            rooms[chat] = portal.mxid
            child = await alice.get_state(space, "m.space.child", portal.mxid)
            assert child["via"] == [bridge.domain]
            await alice.join(portal.mxid)
            parent = await alice.get_state(portal.mxid, "m.space.parent", space)
            assert parent == {"via": [bridge.domain], "canonical": True}

        # Deleting a portal takes it out of the space.
        gone = chats[0]
        await alice.invite(rooms[gone], admin.user_id)
        await admin.join(rooms[gone])
        await admin.send_text(rooms[gone], "!delete-portal")
        await alice.wait_for_event(
            space,
            lambda e: (
                e.get("type") == "m.space.child"
                and e.get("state_key") == rooms[gone]
                and e.get("content") == {}
            ),
        )
        assert await bridge.spaces.space_of("fake", PortalKey(gone)) is None
        child = await alice.get_state(space, "m.space.child", rooms[chats[1]])
        assert child["via"] == [bridge.domain]


async def test_no_second_space_after_a_restart(make_bridge, bridge_env: BridgeEnv, uid) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        remote_id = client.login.remote_id
        net = fake(bridge).network
        guild = SpaceInfo(uid("guild"), name="A guild")
        first, later, resynced = uid("c1"), uid("c2"), uid("c3")
        net.add_chat(first, members=[remote_id, "bob"], parent=guild)
        await client.remote_message(first, "bob", "hi")
        space = await linked_space(bridge, first)
        await alice.wait_for_event(space, lambda e: is_space_invite(e))

        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        client = bridge.clients[client.login.id]
        net = fake(bridge).network
        net.add_chat(later, members=[remote_id, "bob"], parent=guild)
        await client.remote_message(later, "bob", "after the restart")
        assert await linked_space(bridge, later) == space
        # A portal made without a container joins it when a resync names one.
        net.add_chat(resynced, members=[remote_id, "bob"])
        await client.remote_message(resynced, "bob", "no container yet")
        await eventually(lambda: bridge.store.get_portal("fake", PortalKey(resynced)))
        await client.emit(RemoteChatResync(PortalKey(resynced), info=ChatInfo(parent=guild)))
        assert await linked_space(bridge, resynced) == space
        assert len(await space_rows(bridge)) == 1
        assert await space_invites(alice) == {space}  # invited once, to the one space


async def test_a_link_cut_short_by_a_stop_is_finished_at_the_next_start(
    make_bridge, bridge_env: BridgeEnv, uid
) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"], parent=SpaceInfo(uid("ws")))

        async def stopped_first(*args: Any, **kwargs: Any) -> None:
            """The bridge stops before its Matrix side of the link runs."""

        bridge.spaces._link = stopped_first  # type: ignore[method-assign]
        await client.remote_message(chat, "bob", "hi")
        await eventually(lambda: bridge.store.get_portal("fake", PortalKey(chat)))
        await eventually(lambda: bridge.db.fetchval("SELECT count(*) FROM space_member"))
        assert await bridge.spaces.space_of("fake", PortalKey(chat)) is None
        assert [r["mxid"] for r in await space_rows(bridge)] == [None]

        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        space = await linked_space(bridge, chat)
        await alice.wait_for_event(space, lambda e: is_space_invite(e))
        assert len(await space_rows(bridge)) == 1


async def test_a_chat_that_moves_to_another_container_moves_space(
    make_bridge, bridge_env: BridgeEnv, uid
) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"], parent=SpaceInfo(uid("a")))
        await client.remote_message(chat, "bob", "hi")
        old = await linked_space(bridge, chat)
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.mxid
        await alice.wait_for_event(old, lambda e: is_space_invite(e))
        await alice.join(old)

        await client.emit(
            RemoteChatResync(PortalKey(chat), info=ChatInfo(parent=SpaceInfo(uid("b"))))
        )
        await alice.wait_for_event(
            old,
            lambda e: (
                e.get("type") == "m.space.child"
                and e.get("state_key") == portal.mxid
                and e.get("content") == {}
            ),
            timeout=30,
        )
        new = await linked_space(bridge, chat)
        assert new != old
        await alice.join(portal.mxid)
        assert (await alice.get_state(portal.mxid, "m.space.parent", new))["canonical"] is True
        assert await alice.get_state(portal.mxid, "m.space.parent", old) == {}


async def test_an_upgraded_portal_room_replaces_the_old_one_in_its_space(
    make_bridge, bridge_env: BridgeEnv, uid
) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat = uid("chat")
        net = fake(bridge).network
        net.add_chat(chat, members=[client.login.remote_id, "bob"], parent=SpaceInfo(uid("ws")))
        await client.remote_message(chat, "bob", "hi")
        space = await linked_space(bridge, chat)
        portal = await bridge.store.get_portal("fake", PortalKey(chat))
        assert portal is not None and portal.mxid
        old = portal.mxid
        await alice.wait_for_event(space, lambda e: is_space_invite(e))
        await alice.join(space)
        await alice.join(old)
        await give_power(bridge, old, alice.user_id, 150)  # so that she may upgrade it
        answer = await alice.request(
            "POST", f"/rooms/{quote(old, safe='')}/upgrade", {"new_version": "12"}
        )
        new = str(answer["replacement_room"])
        await alice.wait_for_event(old, notice_says("Invite me"), timeout=20)
        await alice.invite(new, bridge.bot_mxid)
        await alice.wait_for_event(
            space,
            lambda e: e.get("type") == "m.space.child" and e.get("state_key") == new,
            timeout=30,
        )
        assert await alice.get_state(space, "m.space.child", old) == {}
        assert (await alice.get_state(space, "m.space.child", new))["via"] == [bridge.domain]
        assert await bridge.spaces.space_of("fake", PortalKey(chat)) == space


async def test_a_shared_container_invites_every_user_and_a_private_one_is_per_login(
    make_bridge, bridge_env: BridgeEnv, uid
) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    carol = await bridge_env.synapse.register_user(uid("carol"))
    async with alice, carol:
        a = await login(bridge, alice, uid("a"))
        c = await login(bridge, carol, uid("c"))
        net = fake(bridge).network
        shared = SpaceInfo(uid("team"), name="Team")
        net.add_chat(a_chat := uid("chat"), members=[a.login.remote_id, "bob"], parent=shared)
        net.add_chat(c_chat := uid("chat"), members=[c.login.remote_id, "bob"], parent=shared)
        await a.remote_message(a_chat, "bob", "hi alice")
        await c.remote_message(c_chat, "bob", "hi carol")
        space = await linked_space(bridge, a_chat)
        assert await linked_space(bridge, c_chat) == space
        for user in (alice, carol):
            await user.wait_for_event(space, lambda e: is_space_invite(e))

        # A container private to each login (direct messages, say): one space per login.
        dms = {}
        for client in (a, c):
            chat = uid("dm")
            mine = SpaceInfo("direct", name="Direct messages", receiver=client.login.id)
            net.add_chat(chat, members=[client.login.remote_id, "bob"], parent=mine)
            await client.remote_message(chat, "bob", "just you")
            dms[client.login.id] = await linked_space(bridge, chat)
        assert len(set(dms.values()) | {space}) == 3
        await alice.wait_for_event(dms[a.login.id], lambda e: is_space_invite(e))
        await carol.wait_for_event(dms[c.login.id], lambda e: is_space_invite(e))
        assert dms[c.login.id] not in await space_invites(alice)
        assert dms[a.login.id] not in await space_invites(carol)


async def test_a_personal_space_per_login_lists_its_portals(
    make_bridge, bridge_env: BridgeEnv, uid
) -> None:
    bridge = await make_bridge(**{"bridge.personal_spaces": True})
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        login_id = client.login.id
        net = fake(bridge).network
        in_team, direct = uid("chat"), uid("dm")
        team = SpaceInfo(uid("team"), name="Team")
        net.add_chat(in_team, members=[client.login.remote_id, "bob"], parent=team)
        net.add_chat(direct, members=[client.login.remote_id, "bob"], is_dm=True)
        await client.remote_message(in_team, "bob", "in the team")
        await client.remote_message(direct, "bob", "just us")
        mine = await linked_space(bridge, direct, login_id)
        assert await linked_space(bridge, in_team, login_id) == mine
        container = await linked_space(bridge, in_team)
        assert container != mine
        assert await bridge.spaces.space_of("fake", PortalKey(direct)) is None  # no container

        await alice.wait_for_event(mine, lambda e: is_space_invite(e))
        await alice.join(mine)
        name = (await alice.get_state(mine, "m.room.name"))["name"]
        assert name == f"Fake network ({client.login.remote_id})"
        portal = await bridge.store.get_portal("fake", PortalKey(in_team))
        assert portal is not None and portal.mxid
        assert (await alice.get_state(mine, "m.space.child", portal.mxid))["via"]
        # The container's space is the portal's canonical parent; the login's is not named.
        await alice.join(portal.mxid)
        assert (await alice.get_state(portal.mxid, "m.space.parent", container))["canonical"]
        with pytest.raises(MatrixError):
            await alice.get_state(portal.mxid, "m.space.parent", mine)
