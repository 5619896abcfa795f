"""How the runtime (bridgekit/bridge.py) builds and starts end-to-bridge encryption: kept
here so that the runtime only says when. Nothing here imports mautrix.crypto until a bridge
with ``encryption.allow`` starts (the ``e2ee`` extra is optional)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from mautrix.api import Method

from ..matrix.client import with_retries
from .service import Encryption

__all__ = ["Encryption", "build_encryption", "start_encryption"]

if TYPE_CHECKING:
    from mautrix.util.async_db import Database

    from ..config import Config
    from ..matrix.client import MatrixClient
    from ..matrix.router import MatrixRouter
    from ..metrics import Metrics
    from ..notices import Notices
    from ..outbox.ordering import OrderedExecutor
    from .backend import CryptoBackend


class Runtime(Protocol):
    """What of the runtime (bridgekit.bridge.Bridge) encryption is built from; not the
    Bridge itself (only the entry points import it)."""

    config: Config
    db: Database
    bot_mxid: str
    matrix: MatrixClient
    router: MatrixRouter
    notices: Notices
    inbox: OrderedExecutor
    metrics: Metrics


def build_encryption(bridge: Runtime) -> Encryption:
    """The bridge's :class:`Encryption`; every message it sends to a room passes it."""
    config = bridge.config

    async def bot_get(path: str, query: dict[str, str]) -> Any:
        bot = bridge.matrix.bot
        assert bot is not None
        return await with_retries(
            lambda: bot.api.request(
                Method.GET, "/_matrix/client/v3" + path, query_params=query or None
            ),
            what=f"GET {path}",
            max_attempts=5,
        )

    async def make_backend(rooms: Encryption) -> CryptoBackend:
        from .mautrix_backend import MautrixCrypto  # mautrix.crypto: the e2ee extra

        assert bridge.matrix.session is not None
        return MautrixCrypto(
            homeserver=str(config["homeserver.address"]),
            bot_mxid=bridge.bot_mxid,
            as_token=str(config["appservice.as_token"]),
            session=bridge.matrix.session,
            db=bridge.db,
            settings=config.settings.encryption,
            rooms=rooms,
        )

    encryption = Encryption(
        settings=config.settings.encryption,
        db=bridge.db,
        bot_mxid=bridge.bot_mxid,
        is_ours=lambda mxid: bridge.router.is_ours(mxid),
        room_request=bot_get,
        send_notice=lambda room_id, text: bridge.notices.send_notice(room_id, text),
        make_backend=make_backend,
    )
    bridge.matrix.encryptor = encryption
    return encryption


async def start_encryption(bridge: Runtime, encryption: Encryption) -> None:
    """Before any transaction is handled: the bot's device must exist (and match the
    database) before room keys can be received, and replayed transactions may carry some."""
    await bridge.matrix.register_bot()  # the device is the bot's: the bot must exist
    waiting = encryption.waiting
    waiting.redeliver = lambda evt: bridge.inbox.submit(
        evt["room_id"], lambda: waiting.handle(evt, bridge.router.handle_event)
    )
    await encryption.start()
    bridge.metrics.encryption = encryption.figures
