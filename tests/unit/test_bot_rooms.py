"""Which encrypted events the router decrypts: those in rooms the bot is joined to, followed
in transaction order (bridgekit/matrix/bot_rooms.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bridgekit.matrix.bot_rooms import BotRooms
from bridgekit.matrix.router import MatrixRouter

pytestmark = pytest.mark.engine_independent

BOT = "@bot:example.org"
GHOST = "@_net_bob:example.org"


def member(room: str, user: str, membership: Any) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "room_id": room,
        "state_key": user,
        "sender": user,
        "content": {"membership": membership},
    }


def encrypted(room: str, sender: str = "@alice:example.org") -> dict[str, Any]:
    return {
        "type": "m.room.encrypted",
        "room_id": room,
        "sender": sender,
        "event_id": "$e",
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "x"},
    }


async def test_the_bot_rooms_follow_its_membership() -> None:
    rooms = BotRooms(BOT)

    async def joined_rooms() -> list[str]:
        return ["!a:x", "!b:x", 5]  # type: ignore[list-item]

    await rooms.load(joined_rooms)
    assert "!a:x" in rooms and "!b:x" in rooms and len(rooms) == 2
    rooms.see(member("!a:x", BOT, "leave"))
    rooms.see(member("!b:x", BOT, "ban"))
    rooms.see(member("!c:x", BOT, "invite"))  # invited: no room keys yet
    assert len(rooms) == 0
    rooms.see(member("!c:x", BOT, "join"))
    rooms.see(member("!c:x", "@alice:example.org", "leave"))  # someone else's
    rooms.see({"type": "m.room.member", "room_id": "!c:x", "state_key": BOT, "content": 3})
    rooms.see({"type": "m.room.member", "room_id": 7, "state_key": BOT, "content": {}})
    assert "!c:x" in rooms and len(rooms) == 1


def router(crypto: bool = True, portals: tuple[str, ...] = ()) -> MatrixRouter:
    store = SimpleNamespace(is_portal_room=lambda r: r in portals, management_rooms=set())
    matrix = SimpleNamespace(bot_mxid=BOT)
    return MatrixRouter(
        permission_for=lambda mxid: "user",
        store=store,  # type: ignore[arg-type]
        matrix=matrix,  # type: ignore[arg-type]
        commands=SimpleNamespace(prefix="!"),  # type: ignore[arg-type]
        matrix_to_remote=None,  # type: ignore[arg-type]
        upgrades=None,  # type: ignore[arg-type]
        logins=None,  # type: ignore[arg-type]
        connector_for_ghost=lambda mxid: object() if mxid == GHOST else None,
        send_notice=None,  # type: ignore[arg-type]
        metrics=None,  # type: ignore[arg-type]
        crypto=object() if crypto else None,  # type: ignore[arg-type]
    )


def test_encrypted_events_are_wanted_where_the_bot_holds_the_keys() -> None:
    r = router()
    # A room with only ghosts in it (the bot never joined): no key would ever come.
    assert not r.wants(encrypted("!room:x"))
    # The bot's join and the first encrypted command in one transaction: decided in order.
    events = [member("!room:x", BOT, "join"), encrypted("!room:x")]
    assert [r.wants(e) for e in events] == [True, True]
    assert not r.wants(encrypted("!room:x", sender=GHOST))  # ours: never input
    assert not r.wants(encrypted("!room:x", sender=BOT))
    assert not r.wants({**encrypted("!room:x"), "sender": None})
    # What it decrypts to is asked again: chatter is dropped, a command kept.
    chatter = {**encrypted("!room:x"), "type": "m.room.message", "content": {"body": "hi"}}
    assert not r.wants(chatter)
    assert r.wants({**chatter, "content": {"body": "!bridge net chat"}})
    r.wants(member("!room:x", BOT, "leave"))
    assert not r.wants(encrypted("!room:x"))


def test_without_encryption_nothing_is_decrypted_outside_portals() -> None:
    r = router(crypto=False, portals=("!portal:x",))
    assert r.wants(member("!room:x", BOT, "join"))
    assert not r.wants(encrypted("!room:x"))
    assert r.wants(encrypted("!portal:x"))  # as before: a portal's events are all wanted
