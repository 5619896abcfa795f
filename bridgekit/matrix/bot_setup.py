"""Setting up the bridge bot at start: its account and profile, then a ping from the homeserver."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .client import MatrixClient, with_retries

if TYPE_CHECKING:
    from ..settings import BotSettings

log = logging.getLogger("bridgekit")


async def set_up_bot(
    matrix: MatrixClient, bot_settings: BotSettings, bridge_id: str, address: str
) -> None:
    """Register the bot and set its profile (a failure is logged: the bridge runs on), then
    ask the homeserver to ping the bridge (``address``: where the registration says it is)."""
    bot = matrix.bot
    assert bot is not None
    try:
        await matrix.register_bot()
        name = bot_settings.displayname
        if name:
            await with_retries(lambda: bot.set_displayname(name), what="bot displayname")
        avatar = bot_settings.avatar
        if avatar:
            await with_retries(lambda: bot.set_avatar_url(avatar), what="bot avatar")
    except Exception:
        log.exception("Could not set up the bridge bot")
        return
    await ping_from_homeserver(matrix, bridge_id, address)


async def ping_from_homeserver(
    matrix: MatrixClient, bridge_id: str, address: str, attempts: int = 5
) -> None:
    """Ask the homeserver to ping us. A successful ping also makes Synapse retry at once
    the transactions it held back while it counted the bridge as down (otherwise they wait
    out its backoff, up to minutes after a restart). A failed one does not, so a failure to
    reach us (502/504: e.g. a pooled connection to the previous process) is retried."""
    bot = matrix.bot
    assert bot is not None
    for attempt in range(1, attempts + 1):
        try:
            duration = await bot.appservice_ping(bridge_id)
            log.info("Homeserver -> bridge ping OK in %d ms", duration)
            return
        except Exception as e:
            status = getattr(e, "http_status", None)
            if status not in (502, 504) or attempt == attempts:
                log.warning(
                    "The homeserver could not reach the bridge at %s (appservice.address, "
                    "the registration's url; ping failed): %s",
                    address,
                    e,
                )
                return
            log.info("Homeserver -> bridge ping failed (%s), retrying", e)
            await asyncio.sleep(0.5 * attempt)
