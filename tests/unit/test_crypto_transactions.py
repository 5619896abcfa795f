"""The crypto fields of transactions: what identifies them, and malformed ones."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.crypto.service import Encryption
from bridgekit.matrix.appservice import events_digest
from bridgekit.settings import EncryptionSettings

pytestmark = pytest.mark.engine_independent

BOT = "@bot:example.org"


def to_device(ciphertext: str) -> dict[str, Any]:
    return {
        "type": "m.room.encrypted",
        "sender": "@a:example.org",
        "to_user_id": BOT,
        "to_device_id": "DEV",
        "content": {"ciphertext": ciphertext},
    }


def test_a_transaction_of_only_to_device_messages_has_a_digest_of_them() -> None:
    """A reused transaction id (a homeserver restarted) with other room keys is not a retry."""
    one = events_digest({"de.sorunome.msc2409.to_device": [to_device("a")]})
    other = events_digest({"de.sorunome.msc2409.to_device": [to_device("b")]})
    assert one and other and one != other
    assert events_digest({"de.sorunome.msc2409.to_device": [to_device("a")]}) == one
    assert events_digest({"ephemeral": [{"type": "m.typing"}]}) == ""
    # With timeline events their ids alone decide (a retry carries no to-device messages).
    evt = {"event_id": "$e", "type": "m.room.message"}
    assert events_digest({"events": [evt]}) == events_digest(
        {"events": [evt], "de.sorunome.msc2409.to_device": [to_device("a")]}
    )


class _Backend:
    device_id = "DEV"


def encryption() -> Encryption:
    enc = Encryption(
        settings=EncryptionSettings(allow=True, pickle_key="k" * 32),
        db=None,  # type: ignore[arg-type]
        bot_mxid=BOT,
        is_ours=lambda mxid: False,
        room_request=None,  # type: ignore[arg-type]
        send_notice=None,  # type: ignore[arg-type]
        make_backend=None,  # type: ignore[arg-type]
    )
    enc.backend = _Backend()  # type: ignore[assignment]
    return enc


@pytest.mark.parametrize(
    "data",
    [
        {"org.matrix.msc3202.device_one_time_keys_count": []},
        {"org.matrix.msc3202.device_one_time_keys_count": {BOT: "x"}},
        {
            "org.matrix.msc3202.device_one_time_keys_count": {
                BOT: {"DEV": {"signed_curve25519": "9"}}
            }
        },
        {"org.matrix.msc3202.device_unused_fallback_key_types": {BOT: {"DEV": [1, 2]}}},
        {"org.matrix.msc3202.device_lists": ["@a:example.org"]},
        {"org.matrix.msc3202.device_lists": {"changed": 5, "left": "@a:example.org"}},
        {"de.sorunome.msc2409.to_device": {"not": "a list"}},
    ],
)
def test_malformed_crypto_fields_are_ignored(data: dict[str, Any]) -> None:
    enc = encryption()
    assert enc._own_counts(data) == (None, None)
    assert enc.wants(data) is False


def test_the_bot_device_counts_are_read() -> None:
    enc = encryption()
    data = {
        "org.matrix.msc3202.device_one_time_key_counts": {BOT: {"DEV": {"signed_curve25519": 7}}},
        "org.matrix.msc3202.device_unused_fallback_key_types": {BOT: {"DEV": []}},
    }
    assert enc._own_counts(data) == (7, [])
    assert enc.has_extras(data) and not enc.wants(data)  # counts alone need not be stored
    assert enc.wants({"de.sorunome.msc2409.to_device": [to_device("a")]})
    assert enc.wants({"org.matrix.msc3202.device_lists": {"changed": ["@a:example.org"]}})


async def test_the_admin_is_told_when_to_device_messages_are_not_pushed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import bridgekit.crypto.service as service

    monkeypatch.setattr(service, "PROBE_TRIES", 2)
    monkeypatch.setattr(service, "PROBE_INTERVAL", 0.05)
    sent: list[str] = []

    class Backend(_Backend):
        async def send_to_own_device(self, event_type: str, content: dict[str, Any]) -> None:
            sent.append(event_type)

    enc = encryption()
    enc.backend = Backend()  # type: ignore[assignment]
    await enc._probe()  # nothing pushed
    assert sent == [service.PROBE_TYPE] * 2
    assert "msc2409_to_device_messages_enabled" in caplog.text

    caplog.clear()
    enc = encryption()
    enc.backend = Backend()  # type: ignore[assignment]
    # The probe comes back in a transaction (not by /sync): no warning.
    probe = {**to_device("p"), "type": service.PROBE_TYPE, "sender": BOT}

    async def push_soon() -> None:
        await enc.handle_extras({"de.sorunome.msc2409.to_device": [probe]})

    import asyncio

    task = asyncio.create_task(push_soon())
    await enc._probe()
    await task
    assert enc.push_works.is_set() and "msc2409" not in caplog.text
