"""An encrypted IRC portal: real InspIRCd, real Synapse, the Matrix user's side a real E2EE
client (matrix-nio on vodozemac): both ways, across a restart, and across a SIGKILL while the
user's client rotates the room key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bridgekit.testing.e2ee_client import E2EEUser, user_store
from tests.conftest import BridgeEnv, eventually
from tests.helpers import BridgeProcess
from tests.irc.e2e import ghost, irc_networks, irc_user, open_channel, privmsg_from
from tests.irc.test_e2e_reliability import _join_while_it_starts, _said_by
from tests.test_e2e_encrypted_media import PNG, upload_encrypted
from tests.test_e2e_encryption import ENCRYPTION, raw_events


def e2ee_alice(bridge_env: BridgeEnv, plain: Any, tmp_path: Path) -> E2EEUser:
    return E2EEUser(bridge_env.synapse.base_url, plain.user_id, user_store(tmp_path, plain.user_id))


async def encrypted_room(alice: E2EEUser, room_id: str) -> None:
    await alice.wait_for(
        lambda: room_id in alice.client.rooms and alice.client.rooms[room_id].encrypted
    )


async def test_an_encrypted_channel_portal_both_ways(
    make_bridge: Any, ircd: Any, bridge_env: BridgeEnv, uid: Any, tmp_path: Path
) -> None:
    await make_bridge(networks=irc_networks(ircd), **ENCRYPTION)
    plain = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    alice = e2ee_alice(bridge_env, plain, tmp_path)
    try:
        async with plain, alice:
            room_id, puppet = await open_channel(plain, channel, bob)
            await encrypted_room(alice, room_id)
            await bob.privmsg(channel, "hello from IRC")
            msg = await alice.wait_for_message(room_id, "hello from IRC")
            assert msg["sender"] == ghost(bob.nick) and msg["decrypted"] is True
            await alice.send_text(room_id, "secret from Matrix")
            await bob.wait_for(privmsg_from(puppet, "secret from Matrix"), 30)
            raw = await raw_events(plain, room_id)
            sent = [e for e in raw if e["sender"] == ghost(bob.nick) and "state_key" not in e]
            assert sent and {e["type"] for e in sent} == {"m.room.encrypted"}
            # A file alice's client encrypted: IRC gets a link that serves it decrypted.
            file = await upload_encrypted(alice, PNG, "cat.png")
            content = {"msgtype": "m.image", "body": "cat.png", "file": file}
            await alice.send_event(room_id, "m.room.message", content)
            line = await bob.wait_for(
                lambda m: privmsg_from(puppet)(m) and m.trailing.startswith("cat.png: "), 30
            )
            async with aiohttp.ClientSession() as http:
                async with http.get(line.trailing.split(": ", 1)[1]) as resp:
                    assert resp.status == 200 and await resp.read() == PNG
    finally:
        await bob.close()


async def test_an_encrypted_channel_portal_across_a_restart(
    make_bridge: Any, ircd: Any, bridge_env: BridgeEnv, uid: Any, tmp_path: Path
) -> None:
    """The bridge stops; alice sends with her old room key, rotates it and sends again; the
    bridge starts again on the same database: both reach IRC once, in order (the new key
    came while it was down: Synapse does not push it afterwards, /sync brings it), and what
    the bridge sends, before and after, decrypts on alice's device."""
    bridge = await make_bridge(networks=irc_networks(ircd), **ENCRYPTION)
    plain = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    alice = e2ee_alice(bridge_env, plain, tmp_path)
    try:
        async with plain, alice:
            room_id, puppet = await open_channel(plain, channel, bob)
            await encrypted_room(alice, room_id)
            base = puppet[: -len("[m]")]
            await bob.privmsg(channel, "from IRC before the stop")
            await alice.wait_for_message(room_id, "from IRC before the stop")
            await alice.send_text(room_id, "before the stop")
            await bob.wait_for(privmsg_from(puppet, "before the stop"), 30)
            await make_bridge.stop(bridge)

            await alice.send_text(room_id, "while down, old key")
            alice.client.olm.outbound_group_sessions.pop(room_id, None)  # the client rotates
            await alice.send_text(room_id, "while down, new key")
            await make_bridge(networks=irc_networks(ircd), **ENCRYPTION)
            expected = ["before the stop", "while down, old key", "while down, new key"]
            await eventually(lambda: len(_said_by(bob, base, channel)) >= 3, timeout=90)

            await bob.privmsg(channel, "from IRC after the restart")
            msg = await alice.wait_for_message(room_id, "from IRC after the restart", 60)
            assert msg["decrypted"] is True
            assert _said_by(bob, base, channel) == expected  # once each, in order
            before = await alice.wait_for_message(room_id, "from IRC before the stop")
            assert before["decrypted"] is True
            assert not alice.undecrypted.get(room_id)
    finally:
        await bob.close()


async def test_kill_9_while_the_user_rotates_the_room_key_loses_no_irc_line(
    ircd: Any, bridge_env: BridgeEnv, uid: Any, tmp_path: Path, db_url: str
) -> None:
    """The bridge process is killed (SIGKILL); alice's client rotates the room key and
    sends. After the restart every line reaches IRC once, in order: Synapse's catch-up
    brings the room events, /sync as the bot's device the key it did not push (#14710)."""
    cfg = tmp_path / "config.yaml"
    settings = {**ENCRYPTION, "logging.level": "INFO"}
    cfg.write_text(
        yaml.safe_dump(bridge_env.config_dict(db_url, networks=irc_networks(ircd), **settings))
    )
    plain = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    proc = BridgeProcess(cfg, tmp_path / "bridge.out")
    proc.start()
    alice = e2ee_alice(bridge_env, plain, tmp_path)
    try:
        async with plain, alice:
            room_id, puppet = await _join_while_it_starts(plain, bob, channel, proc)
            await encrypted_room(alice, room_id)
            base = puppet[: -len("[m]")]

            def received() -> list[str]:
                return _said_by(bob, base, channel)

            await alice.send_text(room_id, "before the kill")
            await eventually(lambda: received() == ["before the kill"], timeout=60)
            proc.kill_9()
            # A new room key (nio may have dropped the session itself: a member's devices changed).
            alice.client.olm.outbound_group_sessions.pop(room_id, None)
            expected = ["before the kill", "rotated while dead 1", "rotated while dead 2"]
            for body in expected[1:]:
                await alice.send_text(room_id, body)
            proc.start()
            await eventually(lambda: len(received()) >= 3, timeout=90)
            await asyncio.sleep(1.5)  # a duplicate would show up now
            assert received() == expected, proc.log_tail()
    finally:
        proc.kill_9()
        await bob.close()
