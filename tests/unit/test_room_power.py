"""Edge cases of :class:`~bridgekit.portal.room_power.RoomPower` (the end-to-end tests are
tests/test_e2e_room_mention_power.py and tests/slack/test_e2e_room_mention.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from mautrix.types import PowerLevelStateEventContent

from bridgekit.portal import room_power
from bridgekit.portal.room_power import RoomPower


class Bot:
    def __init__(self, levels: Any, create: Any) -> None:
        self.levels = levels
        self.create = create
        self.create_calls = 0
        self.levels_calls = 0

    async def get_power_levels(self, room_id: str, ensure_joined: bool = True) -> Any:
        self.levels_calls += 1
        if isinstance(self.levels, Exception):
            raise self.levels
        return self.levels

    async def get_state_event(self, room_id: str, etype: Any, format: str = "") -> Any:
        self.create_calls += 1
        return self.create


def create_event(sender: str, v12: bool) -> Any:
    content = SimpleNamespace(supports_creator_power=v12, additional_creators=[])
    return SimpleNamespace(sender=sender, content=content)


def power(bot: Bot) -> RoomPower:
    return RoomPower(SimpleNamespace(bot=bot))  # type: ignore[arg-type]


async def test_level_against_notifications_room() -> None:
    levels = PowerLevelStateEventContent(users={"@mod:x": 50, "@low:x": 49})
    rp = power(Bot(levels, create_event("@bot:x", False)))
    assert await rp.may_mention_room("!r:x", "@mod:x")
    assert not await rp.may_mention_room("!r:x", "@low:x")
    assert not await rp.may_mention_room("!r:x", "@nobody:x")
    levels.notifications.room = 0
    assert await rp.may_mention_room("!r:x", "@nobody:x")


async def test_room_v12_creators_always_may_and_create_is_asked_once() -> None:
    bot = Bot(PowerLevelStateEventContent(), create_event("@creator:x", True))
    rp = power(bot)
    assert await rp.may_mention_room("!r:x", "@creator:x")
    assert not await rp.may_mention_room("!r:x", "@other:x")
    assert bot.create_calls == 1
    # Before v12 the creator is whatever the power levels say.
    assert not await power(Bot(bot.levels, create_event("@c:x", False))).may_mention_room(
        "!r:x", "@c:x"
    )


async def test_unreadable_state_means_no() -> None:
    rp = power(Bot(RuntimeError("forbidden"), create_event("@bot:x", False)))
    assert not await rp.may_mention_room("!r:x", "@mod:x")


@pytest.mark.parametrize(
    "content",
    [
        {"msgtype": "m.text", "body": "@room look"},
        {"msgtype": "m.text", "body": "hi all", "m.mentions": {"room": True}},
        {"msgtype": "m.text", "body": "x", "formatted_body": "<b>&#64;everyone</b>"},
        {"msgtype": "m.text", "body": "x", "formatted_body": "@here"},
    ],
)
async def test_a_message_that_could_mention_the_room_is_asked_about(content: Any) -> None:
    levels = PowerLevelStateEventContent(users={"@mod:x": 50})
    bot = Bot(levels, create_event("@bot:x", False))
    assert await power(bot).may_mention_room("!r:x", "@mod:x", content)
    assert bot.levels_calls == 1


async def test_a_message_that_cannot_mention_the_room_costs_no_request() -> None:
    bot = Bot(PowerLevelStateEventContent(users={"@mod:x": 50}), create_event("@bot:x", False))
    rp = power(bot)
    for content in (
        {"msgtype": "m.text", "body": "plain words"},
        {"msgtype": "m.text", "body": "x", "formatted_body": "<b>x</b>"},
        {"msgtype": "m.text", "body": "x", "m.mentions": {"user_ids": ["@a:x"]}},
    ):
        assert not await rp.may_mention_room("!r:x", "@mod:x", content)
    assert bot.levels_calls == 0


async def test_an_unreadable_room_is_not_asked_again_at_every_message(monkeypatch) -> None:
    """The homeserver down: one failing request per room per FAILURE_HOLD, not per message."""
    bot = Bot(RuntimeError("connection refused"), create_event("@bot:x", False))
    rp = power(bot)
    now = [1000.0]
    monkeypatch.setattr(room_power.time, "monotonic", lambda: now[0])
    for _ in range(50):
        assert not await rp.may_mention_room("!r:x", "@mod:x")
    assert bot.levels_calls == 1
    bot.levels = PowerLevelStateEventContent(users={"@mod:x": 50})
    now[0] += room_power.FAILURE_HOLD + 1
    assert await rp.may_mention_room("!r:x", "@mod:x")
    assert bot.levels_calls == 2
