"""The start-up ping: Synapse retries held-back transactions only after a ping that worked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mautrix.errors import make_request_error

from bridgekit.matrix.bot_setup import ping_from_homeserver


class Bot:
    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.calls = 0

    async def appservice_ping(self, appservice_id: str) -> int:
        self.calls += 1
        if self.failures:
            status = self.failures.pop(0)
            raise make_request_error(status, "{}", "M_CONNECTION_FAILED", "AlreadyCalled")
        return 3


ADDRESS = "http://10.0.0.5:29300"


def matrix_with(bot: Bot) -> SimpleNamespace:
    return SimpleNamespace(bot=bot)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(_: float) -> None:
        return None

    monkeypatch.setattr("bridgekit.matrix.bot_setup.asyncio.sleep", sleep)


async def test_a_ping_the_homeserver_could_not_deliver_is_retried():
    bot = Bot([502, 504])
    await ping_from_homeserver(matrix_with(bot), "bk", ADDRESS)  # type: ignore[arg-type]
    assert bot.calls == 3


async def test_a_refused_ping_is_not_retried():
    bot = Bot([403])  # not an appservice token, or the homeserver lacks the endpoint
    await ping_from_homeserver(matrix_with(bot), "bk", ADDRESS)  # type: ignore[arg-type]
    assert bot.calls == 1


async def test_retries_are_bounded_and_the_failure_names_the_address(caplog):
    bot = Bot([502] * 10)
    await ping_from_homeserver(matrix_with(bot), "bk", ADDRESS, attempts=5)  # type: ignore[arg-type]
    assert bot.calls == 5
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "http://10.0.0.5:29300 (appservice.address" in warning
