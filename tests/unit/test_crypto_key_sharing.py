"""``encryption.allow_key_sharing``: to whom the bot's device gives room keys on request
(mautrix.crypto calls this policy for every ``m.room_key_request``; a RejectKeyShare becomes
an ``m.room_key.withheld`` with its code). The end-to-end side needs a client that asks
another user's device for keys, which matrix-nio does not do (it asks its own devices only),
hence a test of the policy itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mautrix.crypto import RejectKeyShare
from mautrix.types import RoomKeyWithheldCode

from bridgekit.crypto.backend import RoomKeys
from bridgekit.crypto.mautrix_backend import MautrixCrypto

pytestmark = pytest.mark.engine_independent

ROOM = "!portal:example.org"


class Rooms:
    async def room_keys(self, room_id: str) -> RoomKeys:
        assert room_id == ROOM
        return RoomKeys({"algorithm": "m.megolm.v1.aes-sha2"}, ["@alice:example.org"])


def backend(policy: str) -> MautrixCrypto:
    return SimpleNamespace(  # type: ignore[return-value]
        settings=SimpleNamespace(allow_key_sharing=policy), rooms=Rooms()
    )


async def ask(policy: str, user_id: str) -> bool:
    device = SimpleNamespace(user_id=user_id, device_id="DEV")
    request = SimpleNamespace(room_id=ROOM, session_id="S")
    return await MautrixCrypto._allow_key_share(backend(policy), device, request)  # type: ignore[arg-type]


async def test_off_withholds_every_key() -> None:
    with pytest.raises(RejectKeyShare) as refused:
        await ask("off", "@alice:example.org")
    assert refused.value.code == RoomKeyWithheldCode.UNAVAILABLE


async def test_members_get_the_keys_of_their_room_and_nobody_else() -> None:
    assert await ask("members", "@alice:example.org") is True
    with pytest.raises(RejectKeyShare) as refused:
        await ask("members", "@mallory:example.org")
    assert refused.value.code == RoomKeyWithheldCode.UNAUTHORIZED
