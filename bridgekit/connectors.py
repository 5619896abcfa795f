"""The connectors: finding the installed ones (each a package that names its connector class in
the ``bridgekit.connectors`` entry point group, see the README's connector guide), and the
questions the homeserver asks that the running ones answer together (whose ghost is this,
third-party lookups)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from .contract.connector import NetworkConnector, ThirdPartyHandler
from .contract.ids import localpart_of, server_of

log = logging.getLogger("bridgekit")


class InstalledConnectors(Mapping[str, type[NetworkConnector]]):
    """Connector classes from the ``bridgekit.connectors`` entry point group, each imported
    the first time it is asked for: a bridge runs only the networks its config enables, and
    importing the others' libraries cost memory for nothing (slixmpp: 6.5 MiB of RSS in an
    IRC-only bridge). A connector that fails to import counts as not installed."""

    def __init__(self) -> None:
        self._points = {ep.name: ep for ep in entry_points(group="bridgekit.connectors")}
        self._loaded: dict[str, type[NetworkConnector] | None] = {}

    def __getitem__(self, name: str) -> type[NetworkConnector]:
        if name not in self._loaded:
            ep = self._points[name]  # KeyError: not installed
            try:
                self._loaded[name] = ep.load()
            except Exception as e:  # a broken third-party package must not stop the bridge
                log.warning("Could not load connector %s: %s", name, e)
                self._loaded[name] = None
        cls = self._loaded[name]
        if cls is None:
            raise KeyError(name)
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._points)

    def __len__(self) -> int:
        return len(self._points)


def discover_connectors() -> InstalledConnectors:
    """The installed connectors, by name (imported on first use)."""
    return InstalledConnectors()


def connector_for_ghost(
    connectors: Mapping[str, NetworkConnector], domain: str, mxid: str
) -> tuple[NetworkConnector, str] | None:
    """The connector and remote user id behind a ghost MXID, if it is one."""
    if server_of(mxid) != domain:
        return None
    localpart = localpart_of(mxid)
    for connector in connectors.values():
        remote = connector.ghost_remote_id(localpart)
        if remote is not None:
            return connector, remote
    return None


async def thirdparty_lookup(
    connectors: Mapping[str, NetworkConnector],
    kind: str,
    protocol: str | None,
    query: dict[str, str],
) -> list[dict[str, Any]] | dict[str, Any] | None:
    """The appservice API's third-party lookups (``kind``: protocol, location or user)."""
    handlers = {n: c for n, c in connectors.items() if isinstance(c, ThirdPartyHandler)}
    if kind == "protocol":
        handler = handlers.get(protocol or "")
        return handler.protocol_info() if handler else None
    if protocol is None:
        return []  # reverse lookups by alias/userid: none of our connectors index them
    handler = handlers.get(protocol)
    if handler is None:
        return None
    if kind == "location":
        return await handler.lookup_location(query)
    return await handler.lookup_user(query)
