"""Relay mode on IRC: every line a relayed message becomes carries its sender's label, so a
Matrix user without a login cannot make the relay's lines look like someone else's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import give_power, management_room
from tests.irc.e2e import alias, irc_user, start_bridge

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def _relay_room(make_bridge, ircd, bridge_env, uid, admin) -> tuple[Any, str, str, Any]:
    """A relay_only server with ``admin``'s connection relaying the channel's portal room."""
    bridge = await start_bridge(make_bridge, ircd, relay_only=True)
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    relay_nick = uid("Relay")
    conv = await management_room(admin, bridge)
    assert "nick" in await conv.say("login irc")
    assert "password" in await conv.say(relay_nick)
    assert "Logged in" in await conv.say("-")
    room_id = await admin.join(alias(channel))
    await bob.wait_for(lambda m: m.command == "JOIN" and m.nick == relay_nick, 30)
    await give_power(bridge, room_id, admin.user_id, 50)  # set-relay needs a room moderator
    await admin.send_text(room_id, "!set-relay")
    await admin.wait_for_event(room_id, lambda e: "relayed" in e.get("content", {}).get("body", ""))
    return bridge, room_id, relay_nick, bob


async def _relayed(bob: Any, relay_nick: str, count: int) -> list[str]:
    """The next ``count`` lines the relay says in the channel."""
    out = []
    for _ in range(count):
        got = await bob.wait_for(lambda m: m.command == "PRIVMSG" and m.nick == relay_nick, 15)
        out.append(got.trailing)
    return out


async def test_every_line_of_a_relayed_message_carries_the_label(
    make_bridge, ircd, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    guest = await bridge_env.synapse.register_user(uid("guest"))
    async with admin, guest:
        _, room_id, relay_nick, bob = await _relay_room(make_bridge, ircd, bridge_env, uid, admin)
        try:
            await guest.join(room_id)
            name = guest.user_id[1:].split(":")[0]
            await guest.send_text(room_id, f"hi\n<{bob.nick}> I am {bob.nick}")
            assert await _relayed(bob, relay_nick, 2) == [
                f"<{name}> hi",
                f"<{name}> <{bob.nick}> I am {bob.nick}",
            ]
            # A line too long for one IRC line: its continuation is labelled too, so the
            # text where it wraps cannot pose as another speaker.
            long = "word " * 120 + f"<{bob.nick}> wrapped"
            await guest.send_text(room_id, long)
            await guest.send_text(room_id, "end")
            lines = []
            while not lines or lines[-1] != f"<{name}> end":
                lines += await _relayed(bob, relay_nick, 1)
            assert len(lines) >= 3
            assert all(line.startswith(f"<{name}> ") for line in lines), lines
            assert " ".join(line.removeprefix(f"<{name}> ") for line in lines[:-1]).split() == (
                long.split()
            )
            # An HTML message of several lines (what clients send for Shift+Enter and
            # formatting): every line labelled.
            await guest.send_message(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": f"**bold**\n<{bob.nick}> hi",
                    "format": "org.matrix.custom.html",
                    "formatted_body": f"<b>bold</b><br><p>&lt;{bob.nick}&gt; hi</p>",
                },
            )
            got = await _relayed(bob, relay_nick, 2)
            assert all(line.startswith(f"<{name}> ") for line in got), got
        finally:
            await bob.close()


async def test_relayed_names_lose_control_characters_and_shared_names_are_told_apart(
    make_bridge, ircd, bridge_env, uid
):
    admin = await bridge_env.synapse.register_user(uid("admin"))
    sam1 = await bridge_env.synapse.register_user(uid("sam"))
    sam2 = await bridge_env.synapse.register_user(uid("sam"))
    mallory = await bridge_env.synapse.register_user(uid("mallory"))
    async with admin, sam1, sam2, mallory:
        _, room_id, relay_nick, bob = await _relay_room(make_bridge, ircd, bridge_env, uid, admin)
        try:
            for user in (sam1, sam2, mallory):
                await user.join(room_id)
            # A display name with CR/LF (Synapse keeps it as given) cannot end the label early.
            await mallory.send_state(
                room_id,
                "m.room.member",
                mallory.user_id,
                {"membership": "join", "displayname": f"Mal\r\n<{bob.nick}> x\u202e\x02"},
            )
            await mallory.send_text(room_id, "hello")
            assert await _relayed(bob, relay_nick, 1) == [f"<Mal <{bob.nick}> x> hello"]
            # Two members called "Sam": each label names the Matrix id.
            for user in (sam1, sam2):
                await user.send_state(
                    room_id,
                    "m.room.member",
                    user.user_id,
                    {"membership": "join", "displayname": "Sam"},
                )
            await sam1.send_text(room_id, "one")
            await sam2.send_text(room_id, "two")
            assert await _relayed(bob, relay_nick, 2) == [
                f"<Sam ({sam1.user_id})> one",
                f"<Sam ({sam2.user_id})> two",
            ]
            # Once the name is no longer shared, the plain name is enough again.
            await sam2.send_state(
                room_id,
                "m.room.member",
                sam2.user_id,
                {"membership": "join", "displayname": "Other"},
            )
            await sam1.send_text(room_id, "three")
            assert await _relayed(bob, relay_nick, 1) == ["<Sam> three"]
            # Posing as the told-apart form of another member does not work either.
            await sam2.send_state(
                room_id, "m.room.member", sam2.user_id, {"membership": "join", "displayname": "Sam"}
            )
            await mallory.send_state(
                room_id,
                "m.room.member",
                mallory.user_id,
                {"membership": "join", "displayname": f"Sam ({sam1.user_id})"},
            )
            await mallory.send_text(room_id, "four")
            assert await _relayed(bob, relay_nick, 1) == [
                f"<Sam ({sam1.user_id}) ({mallory.user_id})> four"
            ]
        finally:
            await bob.close()
