"""No Matrix input can inject an IRC command; look-alike names never reach another portal.

Reproduces the matrix-appservice-irc advisories: a reply whose quoted fallback carries CR,
and an admin-command argument carrying a newline. A raw IRC client watches #evil, which
the injected commands would make the puppet join (or message).
"""

from __future__ import annotations

import asyncio

import pytest

from bridgekit.testing.matrix_client import MatrixError
from tests.helpers import management_room
from tests.irc.e2e import (
    DOMAIN,
    alias,
    body_is,
    connector,
    irc_user,
    open_channel,
    privmsg_from,
    start_bridge,
)

# What this checks cannot depend on the database engine: SQLite pass only.
pytestmark = pytest.mark.engine_independent


async def test_no_command_injection_from_matrix(make_bridge, ircd, bridge_env, uid):
    bridge = await start_bridge(make_bridge, ircd)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel, evil = "#" + uid("chan"), "#" + uid("evil")
    bob = await irc_user(ircd, uid("bob"), channel, evil)
    async with alice:
        try:
            room_id, puppet = await open_channel(alice, channel, bob)
            await bob.privmsg(channel, "quote me")
            quoted = await alice.wait_for_event(room_id, body_is("quote me"))
            # 1. A reply whose quoted fallback (and body) carry CR and LF.
            await alice.send_message(
                room_id,
                {
                    "msgtype": "m.text",
                    "body": f"> <@x:{DOMAIN}> quote me\rJOIN {evil}\r\n\r\nreal\rJOIN {evil}\n"
                    f"PRIVMSG {evil} :pwned",
                    "format": "org.matrix.custom.html",
                    "formatted_body": f"<mx-reply>quote me\rJOIN {evil}\r\n</mx-reply>"
                    f"real\rJOIN {evil}<br>PRIVMSG {evil} :pwned\x00QUIT",
                    "m.relates_to": {"m.in_reply_to": {"event_id": quoted["event_id"]}},
                },
            )
            lines = [(await bob.wait_for(privmsg_from(puppet), 15)).trailing]
            while "pwned" not in lines[-1]:
                lines.append((await bob.wait_for(privmsg_from(puppet), 15)).trailing)
            # The text arrives as text (quote dropped, "nick: " prefix), one message per line.
            assert lines[0].startswith(f"{bob.nick}: real")
            assert not any("quote me" in line for line in lines)
            # 2. Display name with CR/LF used for the nick of a new user.
            mallory = await bridge_env.synapse.register_user(uid("mallory"))
            async with mallory:
                await mallory.set_displayname(f"m\r\nJOIN {evil}\r\nQUIT")
                m_room = await mallory.join(alias(channel))
                joined = await bob.wait_for(
                    lambda m: (
                        m.command == "JOIN" and (m.nick or "").endswith("[m]") and m.nick != puppet
                    ),
                    30,
                )
                assert "\r" not in joined.nick and " " not in joined.nick
                await mallory.send_text(m_room, f"hi\r\nJOIN {evil}")
                await bob.wait_for(privmsg_from(joined.nick, "hi"), 15)
            # 3. Command arguments carrying a newline (the advisory: `irc join "#a\r\nQUIT"`).
            conv = await management_room(alice, bridge)
            for cmd in (
                f'irc join "#a\r\nJOIN {evil}"',
                f'irc join "#a\nPART {channel}"',
                f'irc nick "x\r\nJOIN {evil}"',
                f'irc whois "b\rJOIN {evil}"',
                f"irc join #a\nJOIN {evil}",
            ):
                answer = await conv.say(cmd, timeout=20)
                assert "Not a valid" in answer or "takes one" in answer, answer
            await bob.privmsg(channel, "still here?")
            await alice.wait_for_event(room_id, body_is("still here?"))
            await asyncio.sleep(0.5)
            # Nothing joined #evil, nobody quit or parted: no injected command ran.
            assert not [
                m
                for m in bob.history
                if m.command in ("JOIN", "PART", "QUIT", "KICK")
                and m.param(0) in (evil, channel)
                and m.nick != bob.nick
                and (m.command != "JOIN" or m.param(0) == evil)
            ]
            assert not [m for m in bob.history if m.command == "PRIVMSG" and m.param(0) == evil]
            clients = connector(bridge).clients.values()
            assert all(evil.lower() not in c.channels for c in clients)
        finally:
            await bob.close()


async def test_look_alike_aliases_do_not_map_to_a_channel(make_bridge, ircd, bridge_env, uid):
    bridge = await start_bridge(make_bridge, ircd)
    irc = connector(bridge)
    chan = uid("chan")
    assert (await irc.resolve_alias(f"_irc_local_=23{chan}"))[0].id == f"local/#{chan}"
    for bad in (
        f"_irc_local_=23_{chan}",  # upper-case spelling of the same channel: not canonical
        f"_irc_local_=23{chan}=0d=0a",  # CR LF
        f"_irc_local_=23{chan}=00",  # NUL
        f"_irc_local_=23{chan}=e2=80=8b",  # zero-width space look-alike
        f"_irc_local_=23{chan}=2c=23other",  # comma: two channels
        f"_irc_local_=23{chan}=20x",  # space
        f"_irc_local_={chan}",  # bad escape
        f"_irc_local_{chan}",  # not a channel
        f"_irc_other_=23{chan}",  # unknown server
    ):
        assert await irc.resolve_alias(bad) is None, bad
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        with pytest.raises(MatrixError):
            await alice.join(f"#_irc_local_=23_{chan}:{DOMAIN}")
    # Ghosts: the same nick in another case is the same ghost; non-canonical ones are not ours.
    assert irc.ghost_localpart("local/bob{m}") == "_irc_local_bob=7bm=7d"
    assert irc.ghost_remote_id("_irc_local_bob=7bm=7d") == "local/bob{m}"
    assert irc.ghost_remote_id("_irc_local_bob=5bm=5d") is None  # "[" folds to "{"
    assert irc.ghost_remote_id("_irc_local__bob") is None
