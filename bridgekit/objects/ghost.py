"""The :class:`Ghost` object (the Matrix user that stands for a remote user) and its registry
:class:`Ghosts`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from mautrix.appservice import IntentAPI

from ..database.net_metadata import default_of
from ..database.records import GhostRow
from ..database.store import Store
from ..matrix.client import with_retries
from .metadata import MetadataTypes

__all__ = ["MAX_DISPLAYNAME", "Ghost", "Ghosts"]

log = logging.getLogger("bridgekit.objects.ghost")

#: Synapse refuses display names longer than this.
MAX_DISPLAYNAME = 256


class Ghost(GhostRow):
    """One remote user's Matrix user (see :mod:`bridgekit.objects`).

    The row's fields are the object's persisted state (``name`` and ``avatar_url`` as the
    network last reported them, so that a report of the same costs nothing). Built by its
    :class:`Ghosts`: one object per ghost.
    """

    # One object per ghost: it is equal only to itself, and hashable.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    _store: ClassVar[Store]
    _meta_types: ClassVar[MetadataTypes]

    async def save(self) -> None:
        await self._store.save_ghost(self)

    # -- the connector's metadata ----------------------------------------------------------

    async def net_metadata(self) -> Any:
        """The connector's ``ghost_metadata_type`` value of this ghost (a copy)."""
        cls = self._meta_types(self.network, "ghost")
        return await self._store.net_metadata.get("ghost", self.network, (self.remote_id,), cls)

    async def set_net_metadata(self, value: Any) -> None:
        """Write it, durably; ``LookupError`` if the ghost is not stored."""
        self._meta_types.check(self.network, "ghost", value)
        await self._store.net_metadata.set("ghost", self.network, (self.remote_id,), value)

    # -- the profile -----------------------------------------------------------------------

    def display(self, name: str | None) -> str:
        """The display name the ghost gets for ``name``: its remote id when the network has
        none, cut to what homeservers accept."""
        return (name or self.remote_id)[:MAX_DISPLAYNAME]

    async def update_info(
        self,
        intent: IntentAPI,
        name: str | None,
        avatar_url: str | None,
        is_bot: bool | None,
        *,
        avatar_mxc: Callable[[str], Awaitable[str]],
    ) -> bool:
        """Bring the Matrix profile (through ``intent``, the ghost's own) to what the network
        reports; ``None`` leaves a field as it is. ``avatar_mxc`` turns an avatar URL into an
        ``mxc://`` URI (uploaded once per distinct image). Only what differs from the row
        costs a homeserver request. Whether the row changed (the caller saves it)."""
        changed = False
        if name is not None and self.display(name) != self.name:
            display = self.display(name)
            await with_retries(lambda: intent.set_displayname(display), what="ghost displayname")
            self.name = display
            changed = True
        if avatar_url is not None and avatar_url != (self.avatar_url or ""):
            changed |= await self._set_avatar(intent, avatar_url, avatar_mxc)
        if is_bot is not None and is_bot != self.is_bot:
            self.is_bot = is_bot
            changed = True
        return changed

    async def _set_avatar(
        self, intent: IntentAPI, url: str, avatar_mxc: Callable[[str], Awaitable[str]]
    ) -> bool:
        """Set the avatar (none for ``""``); False when the image could not be had, so that
        the next report tries again."""
        try:
            mxc = await avatar_mxc(url) if url else ""
            await with_retries(
                lambda: intent.set_avatar_url(mxc), what="ghost avatar", max_attempts=5
            )
        except Exception as e:
            log.warning("Could not set avatar of %s: %s", self.mxid, e)
            return False
        self.avatar_url = url
        return True


class Ghosts:
    """The ghosts of one runtime (each lookup returns the one object of its ghost)."""

    def __init__(self, store: Store, meta_types: MetadataTypes) -> None:
        self.store = store
        self.meta_types = meta_types
        #: This runtime's Ghost class; the store's ghost table builds its rows with it.
        self.make: type[Ghost] = type(
            "Ghost",
            (Ghost,),
            {
                "__module__": __name__,
                "__qualname__": "Ghost",
                "_store": store,
                "_meta_types": meta_types,
            },
        )

    async def get(self, network: str, remote_id: str) -> Ghost | None:
        return await self.store.get_ghost(network, remote_id)  # type: ignore[return-value]

    def new(self, network: str, remote_id: str, mxid: str) -> Ghost:
        """A ghost not stored yet (:meth:`Ghost.save` stores it)."""
        return self.make(network=network, remote_id=remote_id, mxid=mxid)

    async def net_metadata(self, network: str, remote_id: str) -> Any:
        """A ghost's metadata, or the type's default if there is no such ghost."""
        ghost = await self.get(network, remote_id)
        if ghost is None:
            return default_of(self.meta_types(network, "ghost"))
        return await ghost.net_metadata()

    async def set_net_metadata(self, network: str, remote_id: str, value: Any) -> None:
        ghost = await self.get(network, remote_id)
        if ghost is None:
            self.meta_types.check(network, "ghost", value)
            raise LookupError(f"no {network} ghost {remote_id} is stored")
        await ghost.set_net_metadata(value)
