"""What a connector answers for a Matrix event it sent. Its own module, so the capabilities
(``EditHandler``, ``ReactionHandler``) and the connector classes name it without importing each
other; re-exported by :mod:`bridgekit.contract.connector`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .events import RemoteMessageID


@dataclass
class MessageResult:
    """What a network said about a message it accepted.

    ``remote_id`` is the network's id for it (if the network has ids): the runtime maps it to
    the Matrix event so later edits, replies, reactions and redactions find it, and so the
    remote echo of the message is recognised and not bridged back.
    """

    remote_id: RemoteMessageID | None = None
    timestamp: float | None = None
    extra_ids: Sequence[RemoteMessageID] = ()
