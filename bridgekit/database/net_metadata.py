"""Typed, versioned connector metadata on portal, ghost and login rows.

A connector keeps per-object state (an IRC login's NickServ password, an XMPP login's rooms)
with the object it belongs to, not in key/value strings it has to name and clean up itself:
it declares a dataclass per table (``portal_metadata_type``, ``ghost_metadata_type``,
``login_metadata_type`` on its :class:`~bridgekit.contract.connector.NetworkConnector`) and reads
and writes instances through its :class:`~bridgekit.contract.connector.BridgeAPI`. The row goes, the
state goes with it.

Stored as a JSON object in the row's ``net_metadata`` column beside ``net_metadata_v``, the
``VERSION`` of the type that wrote it (a class attribute, 1 if absent; 0 in the column means
never written). Reading:

* a stored version newer than the type's is refused (:class:`MetadataTooNew`): defaults
  written back over it would lose what the newer code kept;
* an older one goes through the type's ``upgrade_metadata(data, version) -> data`` classmethod
  if it has one (the connector's hook), else is read as it is (new fields take defaults);
* keys the type does not know are dropped, with a warning (a field removed without a new
  ``VERSION``): a written value holds exactly the type's fields;
* a value that cannot be decoded (not JSON, a field of the wrong type, a required field
  missing) is logged and read as the type's default, never raised: one bad row must not stop
  a login from connecting.

Decoded values are cached (the store's rows are read once); each read returns a copy, so a
change reaches the row only through a write, which is durable when it returns.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mautrix.util.async_db import Database

from .records import LRU

__all__ = ["MetadataStore", "MetadataTooNew", "decode", "default_of", "encode", "version_of"]

log = logging.getLogger("bridgekit.database.net_metadata")

T = TypeVar("T")

#: Table of each kind of row, and the columns that name one row within a network.
_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "portal": ("portal", ("remote_id", "receiver")),
    "ghost": ("ghost", ("remote_id",)),
    "login": ("user_login", ("id",)),
}


class MetadataTooNew(RuntimeError):
    """Stored metadata was written by a newer version of the connector than is running."""


def version_of(cls: type) -> int:
    return int(getattr(cls, "VERSION", 1))


def encode(value: Any) -> str:
    return json.dumps(dataclasses.asdict(value), ensure_ascii=False, separators=(",", ":"))


def _type_ok(hint: Any, value: Any) -> bool:
    """A shallow check of a JSON value against a field's type hint (what JSON can carry)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(arg, value) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is not None:
        hint = origin
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return isinstance(hint, type) and isinstance(value, hint)


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        log.warning("%s: dropping keys %s that %s does not have", where, unknown, cls.__name__)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            continue
        hint = hints.get(name, Any)
        if not _type_ok(hint, value):
            raise TypeError(f"field {name!r} is {type(value).__name__}, not {hint}")
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            value = _build(hint, value, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


def default_of(cls: type[T]) -> T:
    """``cls()``: every field of a metadata type needs a default (what a row never written or
    not decodable reads as)."""
    try:
        return cls()
    except TypeError as e:
        raise TypeError(f"{cls.__name__} needs a default for every field: {e}") from e


def decode(cls: type[T], raw: str | None, version: int, where: str) -> T:
    """``raw`` (stored by ``version`` of ``cls``) as a ``cls``; see the module docstring."""
    current = version_of(cls)
    if version > current:
        raise MetadataTooNew(
            f"{where}: metadata is version {version} but this {cls.__name__} knows only up to "
            f"{current}: run the newer connector, or clear it by writing a new value"
        )
    try:
        if version <= 0 and raw in (None, "", "{}"):
            return default_of(cls)
        data = json.loads(raw or "{}")
        if not isinstance(data, dict):
            raise TypeError(f"not a JSON object but {type(data).__name__}")
        upgrade = getattr(cls, "upgrade_metadata", None)
        if 0 < version < current and upgrade is not None:
            data = upgrade(data, version)
        return _build(cls, data, where)
    except Exception as e:  # anything a bad row or a buggy upgrade hook raises
        log.error("%s: stored %s cannot be decoded (%s); using defaults", where, cls.__name__, e)
        return default_of(cls)


class MetadataStore:
    """Reads and writes of ``net_metadata``, with the decoded values cached. Writes go through
    ``write`` (the store's group commit: durable when it returns, and an IRC join that saves
    the channel lists of many logins shares commits)."""

    def __init__(
        self,
        db: Database,
        write: Callable[..., Awaitable[None]] | None = None,
        size: int = 20_000,
    ) -> None:
        self.db = db
        self._write = write or self._execute
        self._cache = LRU(size)

    async def _execute(self, sql: str, *args: Any) -> None:
        await self.db.execute(sql, *args)

    @staticmethod
    def _where(kind: str) -> tuple[str, str]:
        table, cols = _TABLES[kind]
        cond = " AND ".join(f"{c}=${i}" for i, c in enumerate(cols, start=2))
        return table, f"network=$1 AND {cond}"

    async def get(self, kind: str, network: str, key: tuple[str, ...], cls: type[T]) -> T:
        """The metadata of one row (the type's default if the row does not exist yet)."""
        cache_key = (kind, network, key)
        cached = self._cache.get(cache_key)
        if cached is None or type(cached) is not cls:
            table, where = self._where(kind)
            row = await self.db.fetchrow(
                f"SELECT net_metadata, net_metadata_v FROM {table} WHERE {where}", network, *key
            )
            if row is None:
                return default_of(cls)
            label = f"{network} {kind} {'/'.join(key)}"
            cached = decode(cls, row["net_metadata"], row["net_metadata_v"], label)
            newer = self._cache.get(cache_key)
            if type(newer) is cls:  # a write while this read ran: its value wins the cache
                cached = newer
            else:
                self._cache.put(cache_key, cached)
        return copy.deepcopy(cached)

    async def set(self, kind: str, network: str, key: tuple[str, ...], value: Any) -> None:
        """Write one row's metadata, durably before returning. ``LookupError`` if there is no
        such row (metadata belongs to a portal, ghost or login the runtime has stored)."""
        cache_key = (kind, network, key)
        table, where = self._where(kind)
        # A row in the cache exists (deleting one forgets it); any other is looked up.
        if cache_key not in self._cache and not await self.db.fetchval(
            f"SELECT 1 FROM {table} WHERE {where}", network, *key
        ):
            raise LookupError(f"no {network} {kind} {'/'.join(key)} is stored")
        n = len(key)
        await self._write(
            f"UPDATE {table} SET net_metadata=${n + 2}, net_metadata_v=${n + 3} WHERE {where}",
            network,
            *key,
            encode(value),
            version_of(type(value)),
        )
        self._cache.put(cache_key, copy.deepcopy(value))

    def forget(self, kind: str, network: str, key: tuple[str, ...]) -> None:
        """The row was deleted: a row made again later starts from defaults."""
        self._cache.pop((kind, network, key), None)

    def forget_login(self, login_id: str) -> None:
        for cache_key in [k for k in self._cache if k[0] == "login" and k[2] == (login_id,)]:
            del self._cache[cache_key]
