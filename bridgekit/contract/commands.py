"""Command types a connector uses: what a command declares (:class:`Command`) and what its
handler receives (:class:`CommandEvent`, with the connector's ``BridgeAPI`` as ``ce.bridge``).

They live in :mod:`bridgekit.contract.connector` (``NetworkConnector.commands()`` and
``CommandEvent.bridge`` name each other's module) and are re-exported here, where connectors
import them from. The processor that parses, checks and runs them is
:mod:`bridgekit.commands.processor`.
"""

from __future__ import annotations

from .connector import Command, CommandEvent, CommandPortal, Handler

__all__ = ["Command", "CommandEvent", "CommandPortal", "Handler"]
