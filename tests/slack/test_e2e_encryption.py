"""An encrypted Slack channel portal, both ways: fake Slack (real slack-sdk on the bridge's
side) <-> bridge <-> real Synapse, the Matrix user's side a real E2EE client (matrix-nio on
vodozemac). Encryption holds with every connector, not only the fake one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually
from tests.slack.conftest import login_app, slack_networks
from tests.test_e2e_encryption import ENCRYPTION, e2ee_user, raw_events

pytestmark = pytest.mark.engine_independent  # persistence: tests/test_e2e_encryption.py


async def test_an_encrypted_channel_portal_both_ways(
    make_bridge: Any, slack_fake: Any, slack_world: Any, bridge_env: Any, tmp_path: Path, uid: Any
) -> None:
    world = slack_world
    bridge = await make_bridge(networks=slack_networks(slack_fake), **ENCRYPTION)
    alice, plain = await e2ee_user(bridge_env, tmp_path, uid)
    async with plain, alice:
        await login_app(bridge, plain, world)
        world.fake.post_user_message(world.general.id, world.bob.id, "first words")
        room_id = await alice.join_encrypted_invite()
        first = await alice.wait_for_message(room_id, "first words")
        assert first["sender"] == world.ghost(world.bob) and first["decrypted"] is True

        await alice.send_text(room_id, "secret from Matrix")
        await eventually(
            lambda: any(
                m.text == "secret from Matrix" for m in world.fake.messages[world.general.id]
            )
        )
        world.fake.post_user_message(world.general.id, world.bob.id, "secret from Slack")
        msg = await alice.wait_for_message(room_id, "secret from Slack")
        assert msg["decrypted"] is True
        raw = await raw_events(plain, room_id)
        ghosts = [e for e in raw if e["sender"] == world.ghost(world.bob) and "state_key" not in e]
        assert ghosts and {e["type"] for e in ghosts} == {"m.room.encrypted"}
        assert not any("secret from" in str(e["content"]) for e in raw)
