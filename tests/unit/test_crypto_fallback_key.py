"""When the bot's device replaces its fallback key: once per use. Every transaction and every
/sync carries "the fallback key was used" until one computed after the new upload; the
end-to-end test (tests/test_e2e_encryption.py) shows one use answered once, this the rest:
a real second use is answered too, and a report that never confirms still ends the hold."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from mautrix.crypto import OlmAccount

from bridgekit.crypto import mautrix_backend
from bridgekit.crypto.mautrix_backend import FALLBACK_SETTLE, MautrixCrypto

pytestmark = pytest.mark.engine_independent

USED: list[str] = []
UNUSED = ["signed_curve25519"]


class Clock:
    now = 1000.0

    def monotonic(self) -> float:
        return self.now


def backend(uploads: list[Any]) -> MautrixCrypto:
    crypto = MautrixCrypto.__new__(MautrixCrypto)

    async def request(method: Any, path: Any, body: Any) -> dict[str, Any]:
        uploads.append(body)
        return {}

    async def put_account(account: Any) -> None:
        return None

    crypto.bot_mxid, crypto.device_id = "@bot:example.org", "DEV"
    crypto.machine = SimpleNamespace(account=OlmAccount())  # type: ignore[assignment]
    crypto.client = SimpleNamespace(api=SimpleNamespace(request=request))  # type: ignore[assignment]
    crypto.store = SimpleNamespace(put_account=put_account)  # type: ignore[assignment]
    crypto._fallback_at, crypto._fallback_confirmed = 0.0, True
    return crypto


async def test_one_upload_per_use_and_again_for_the_next_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(mautrix_backend, "time", clock)
    uploads: list[Any] = []
    crypto = backend(uploads)
    await crypto.handle_key_counts(None, USED)
    assert len(uploads) == 1 and "fallback_keys" in uploads[0]
    for _ in range(3):  # the same use, from reports computed before the upload
        await crypto.handle_key_counts(None, USED)
    assert len(uploads) == 1
    await crypto.handle_key_counts(None, UNUSED)  # the new key is there, unused
    await crypto.handle_key_counts(None, USED)  # so this is a new use
    assert len(uploads) == 2


async def test_without_a_confirming_report_the_hold_ends_after_the_settle_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(mautrix_backend, "time", clock)
    uploads: list[Any] = []
    crypto = backend(uploads)
    await crypto.handle_key_counts(None, USED)
    clock.now += FALLBACK_SETTLE / 2
    await crypto.handle_key_counts(None, USED)
    assert len(uploads) == 1
    clock.now += FALLBACK_SETTLE
    await crypto.handle_key_counts(None, USED)
    assert len(uploads) == 2
