"""Which dataclass a connector keeps as metadata of its portals, ghosts and logins."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


class MetadataTypes:
    """``types(network, kind)``: the ``{kind}_metadata_type`` the connector named ``network``
    declares (see :mod:`bridgekit.database.net_metadata`). Reads the live map of loaded
    connectors, so it may be built before they are."""

    def __init__(self, connectors: Mapping[str, Any]) -> None:
        self.connectors = connectors

    def __call__(self, network: str, kind: str) -> type:
        cls = getattr(self.connectors.get(network), f"{kind}_metadata_type", None)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise TypeError(f"the {network} connector declares no {kind}_metadata_type")
        return cls

    def check(self, network: str, kind: str, value: Any) -> None:
        """Refuse a value of another type than the declared one (it would be stored as is)."""
        cls = self(network, kind)
        if type(value) is not cls:
            raise TypeError(f"{kind} metadata must be a {cls.__name__}, not {type(value)}")
