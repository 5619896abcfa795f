"""Keeping secrets (passwords, tokens) that users type out of room history.

A command or a login field declares that it carries a secret (``Command.secret``,
``LoginField.secret``); the command processor then refuses it outside the user's management
room (where anyone in the room would read it) and redacts the message that carried it. The bot
can only redact others' messages with the room's ``redact`` power: where it lacks it, the user
is told once, so they know the secret stays in the room's history.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mautrix.errors import MatrixRequestError
from mautrix.types import EventType

if TYPE_CHECKING:
    from ..matrix.client import MatrixClient
    from .runtime import CommandRuntime

log = logging.getLogger("bridgekit.commands.processor")

NO_POWER_HINT = (
    "I cannot remove messages in this room, so passwords and tokens you send here stay in "
    "its history: give me the power to remove messages (moderator) if you want them removed."
)


async def can_redact(matrix: MatrixClient, room_id: str) -> bool:
    """Whether the bot may redact other users' events in ``room_id``."""
    bot = matrix.bot
    assert bot is not None
    try:
        pls = await bot.get_power_levels(room_id)
        create = await bot.get_state_event(room_id, EventType.ROOM_CREATE, format="event")
    except MatrixRequestError:
        return False
    return pls.get_user_level(matrix.bot_mxid, create) >= pls.redact


async def redact_secret(matrix: MatrixClient, room_id: str, event_id: str | None) -> bool:
    """Redact the message that carried a secret; False if the bot could not."""
    bot = matrix.bot
    if bot is None or not event_id:
        return False
    try:
        await bot.redact(room_id, event_id, reason="It carried a secret")
    except MatrixRequestError as e:
        log.info("Could not redact a message carrying a secret in %s: %s", room_id, e.message)
        return False
    return True


async def redact_in_management_room(
    runtime: CommandRuntime, room_id: str, sender: str, event_id: str | None
) -> None:
    """Redact a secret the user sent in their management room; if the bot cannot, say so
    once (the welcome may already have: ``no_redact_told`` in the user's metadata)."""
    if await redact_secret(runtime.matrix, room_id, event_id):
        return
    user = await runtime.store.get_user(sender)
    if user is None or user.metadata.get("no_redact_told") == room_id:
        return
    user.metadata["no_redact_told"] = room_id
    await runtime.store.save_user(user)
    await runtime.send_notice(room_id, NO_POWER_HINT)


async def refuse_outside_management(
    runtime: CommandRuntime, room_id: str, event_id: str | None, what: str
) -> None:
    """A secret sent where others read it: remove it if possible, run nothing, say why."""
    removed = await redact_secret(runtime.matrix, room_id, event_id)
    gone = (
        "I removed your message, but others may have read it: change that secret."
        if removed
        else "I could not remove your message: remove it yourself, and change that secret."
    )
    await runtime.send_notice(
        room_id,
        f"`{what}` carries a secret, so it only works in your management room (a direct chat "
        f"with me), not where others can read it. {gone}",
    )


async def remove_mistyped(
    runtime: CommandRuntime,
    room_id: str,
    sender: str,
    event_id: str | None,
    guess: str,
    management: bool,
) -> None:
    """A near miss of a secret command (:mod:`.secret_typos`): remove it like the real one,
    run nothing, and say what it probably meant."""
    if management:
        removed = await redact_secret(runtime.matrix, room_id, event_id)
        if not removed:
            await redact_in_management_room(runtime, room_id, sender, None)
    else:
        removed = await redact_secret(runtime.matrix, room_id, event_id)
    if removed:
        why = "Your message was removed because it may hold a secret."
    else:
        why = "It may hold a secret and I could not remove it: remove it yourself."
    where = "" if management else " (in your management room: a direct chat with me)"
    await runtime.send_notice(
        room_id, f"Did you mean `{guess}`? {why} Send it again spelled right{where}."
    )
