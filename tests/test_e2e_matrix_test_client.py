"""The test client's ``wait_for_invite`` against the real Synapse: an invite the user already
accepted before its sync saw it still counts (a bridge's double puppet joins its user right
after inviting it: a Slack CI run waited 45 s for such an invite), and each invite counts once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.engine_independent


async def test_invite_joined_before_the_first_sync_is_returned(bridge_env, uid):
    synapse = bridge_env.synapse
    async with (
        await synapse.register_user(uid("alice")) as alice,
        await synapse.register_user(uid("bob")) as bob,
    ):
        room_id = await alice.create_room(invite=[bob.user_id])
        await bob.join(room_id)  # before bob's client ever syncs: the room is only "joined"
        assert await bob.wait_for_invite(timeout=30) == (room_id, alice.user_id)


async def test_invite_seen_then_joined_is_returned_once(bridge_env, uid):
    synapse = bridge_env.synapse
    async with (
        await synapse.register_user(uid("alice")) as alice,
        await synapse.register_user(uid("bob")) as bob,
    ):
        first = await alice.create_room(invite=[bob.user_id])
        assert await bob.wait_for_invite(timeout=30) == (first, alice.user_id)
        await bob.join(first)
        await bob.wait_for_event(
            first,
            lambda e: (
                e.get("type") == "m.room.member"
                and e.get("state_key") == bob.user_id
                and e.get("content", {}).get("membership") == "join"
            ),
            timeout=30,
        )
        # The join's timeline shows the invite again: not a second invite.
        second = await alice.create_room(invite=[bob.user_id])
        assert await bob.wait_for_invite(timeout=30) == (second, alice.user_id)
