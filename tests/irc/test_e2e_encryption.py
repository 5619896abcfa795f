"""An encrypted IRC portal: real InspIRCd, real Synapse, the Matrix user's side a real E2EE
client (matrix-nio on vodozemac)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridgekit.testing.e2ee_client import E2EEUser, user_store
from tests.conftest import BridgeEnv
from tests.irc.e2e import ghost, irc_networks, irc_user, open_channel, privmsg_from
from tests.test_e2e_encryption import ENCRYPTION, raw_events


async def test_an_encrypted_channel_portal_both_ways(
    make_bridge: Any, ircd: Any, bridge_env: BridgeEnv, uid: Any, tmp_path: Path
) -> None:
    await make_bridge(networks=irc_networks(ircd), **ENCRYPTION)
    plain = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    alice = E2EEUser(
        bridge_env.synapse.base_url, plain.user_id, user_store(tmp_path, plain.user_id)
    )
    try:
        async with plain, alice:
            room_id, puppet = await open_channel(plain, channel, bob)
            await alice.wait_for(
                lambda: room_id in alice.client.rooms and alice.client.rooms[room_id].encrypted
            )
            await bob.privmsg(channel, "hello from IRC")
            msg = await alice.wait_for_message(room_id, "hello from IRC")
            assert msg["sender"] == ghost(bob.nick) and msg["decrypted"] is True
            await alice.send_text(room_id, "secret from Matrix")
            await bob.wait_for(privmsg_from(puppet, "secret from Matrix"), 30)
            raw = await raw_events(plain, room_id)
            sent = [e for e in raw if e["sender"] == ghost(bob.nick) and "state_key" not in e]
            assert sent and {e["type"] for e in sent} == {"m.room.encrypted"}
    finally:
        await bob.close()
