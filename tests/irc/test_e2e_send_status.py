"""IRC rooms' capabilities and message send status: a moderated channel (+m) where the
puppet has no voice is read-only, refused before anything is written to the server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import eventually
from tests.irc.e2e import channel_scene, connector, privmsg_from, record_sent_lines
from tests.test_e2e_message_status import status_of

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_moderated_channel_without_voice_refuses_early_then_voice_lets_through(
    make_bridge, ircd, bridge_env, uid, monkeypatch
):
    def with_status(**kw: Any) -> Any:
        return make_bridge(**kw, **{"bridge.message_status_events": True})

    async with channel_scene(with_status, ircd, bridge_env, uid) as scene:
        alice, bob, channel, room_id, puppet = scene
        first = await alice.send_text(room_id, "before +m")
        await bob.wait_for(privmsg_from(puppet, "before +m"), 15)
        await alice.wait_for_event(room_id, status_of(first, "SUCCESS"))
        client = next(iter(connector(scene.bridge).clients.values()))
        assert client.conn is not None
        await bob.send_line("MODE", channel, "+m")
        await eventually(lambda: client.channels[client.fold(channel)].moderated, timeout=15)
        written = record_sent_lines(client.conn, monkeypatch)
        quiet = await alice.send_text(room_id, "may I speak?")
        evt = await alice.wait_for_event(room_id, status_of(quiet))
        assert evt["content"]["status"] == "FAIL_PERMANENT"
        assert evt["content"]["reason"] == "m.no_permission"
        assert "moderated" in evt["content"]["message"]
        assert not [line for line in written if b"PRIVMSG" in line]
        # Voiced, the puppet speaks again.
        await bob.send_line("MODE", channel, "+v", puppet)
        members = client.channels[client.fold(channel)].members
        await eventually(lambda: "v" in members[client.fold(puppet)].modes, timeout=15)
        voiced = await alice.send_text(room_id, "thanks for the voice")
        await bob.wait_for(privmsg_from(puppet, "thanks for the voice"), 15)
        await alice.wait_for_event(room_id, status_of(voiced, "SUCCESS"))
