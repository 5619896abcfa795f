"""The :class:`Portal` object and its registry :class:`Portals`.

A portal's remote events run in its *lane*: one
:class:`~bridgekit.outbox.ordering.OrderedExecutor` key per portal, so that its events run in
the order they were committed while other portals' run in parallel. The lane is named by the
portal's identity ``(network, key)``, not by the object, because the first remote event of a
chat arrives before its portal exists (handling it creates the portal): events queued before
and after the creation share one lane. The outbox (:mod:`bridgekit.outbox.remote_queue`) queues
through :meth:`Portals.lane` and the lane operations here, never through the executor itself.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property
from typing import Any, ClassVar

from ..contract.events import PortalKey
from ..database.net_metadata import default_of
from ..database.records import PortalRow
from ..database.store import Store
from ..outbox.ordering import Job, OrderedExecutor
from .metadata import MetadataTypes

__all__ = ["Lane", "Portal", "Portals"]

#: A portal's lane: ``(network, key)``.
Lane = tuple[str, PortalKey]


class Portal(PortalRow):
    """One remote chat and its Matrix room (see :mod:`bridgekit.objects`).

    The row's fields are the object's persisted state. Built by its :class:`Portals` (the
    class is bound to one runtime's collaborators there), so there is one object per portal:
    every lookup of the same portal returns it.
    """

    # One object per portal: it is equal only to itself, and hashable (a set or dict key).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    # Bound per runtime by Portals (class attributes: no per-object cost).
    _store: ClassVar[Store]
    _lanes: ClassVar[OrderedExecutor]
    _meta_types: ClassVar[MetadataTypes]

    # -- the row ---------------------------------------------------------------------------

    async def save(self) -> None:
        """Store the row (durably before returning); from then on lookups return this object."""
        await self._store.save_portal(self)

    async def delete(self) -> None:
        """Delete the row with its messages, reactions and metadata (one transaction)."""
        await self._store.delete_portal(self)

    # -- the connector's metadata ----------------------------------------------------------

    @property
    def _meta_key(self) -> tuple[str, str]:
        return (self.key.id, self.key.receiver)

    async def net_metadata(self) -> Any:
        """The connector's ``portal_metadata_type`` value of this portal (a copy: change it,
        then :meth:`set_net_metadata`); its default while the row is not stored."""
        cls = self._meta_types(self.network, "portal")
        return await self._store.net_metadata.get("portal", self.network, self._meta_key, cls)

    async def set_net_metadata(self, value: Any) -> None:
        """Write the connector's metadata of this portal, durably. ``LookupError`` if the row
        is not stored (metadata belongs to a stored portal)."""
        self._meta_types.check(self.network, "portal", value)
        await self._store.net_metadata.set("portal", self.network, self._meta_key, value)

    # -- the lane --------------------------------------------------------------------------

    @cached_property
    def lane(self) -> Lane:
        """This portal's lane (computed once: a portal's network and key never change)."""
        return (self.network, self.key)

    def submit(self, job: Job) -> None:
        """Run ``job`` after every job queued before it in this portal's lane."""
        self._lanes.submit(self.lane, job)

    @property
    def queued(self) -> int:
        """Jobs of this portal not finished yet, the running one included."""
        return self._lanes.queued(self.lane)


class Portals:
    """The portals of one runtime: lookups (each returns the one object of its portal) and
    the portals' lanes. Built with its collaborators: the store, the connectors' metadata
    types and the executor that runs the lanes."""

    def __init__(self, store: Store, lanes: OrderedExecutor, meta_types: MetadataTypes) -> None:
        self.store = store
        self.lanes = lanes
        #: This runtime's Portal class (its collaborators bound as class attributes). The
        #: store's portal table builds its rows with it (see Store.set_factories).
        self.make: type[Portal] = type(
            "Portal",
            (Portal,),
            {
                "__module__": __name__,
                "__qualname__": "Portal",
                "_store": store,
                "_lanes": lanes,
                "_meta_types": meta_types,
            },
        )
        self.meta_types = meta_types
        # The lane operations, for the outbox (its events may come before their portal): the
        # executor's own bound methods, so a remote event pays no extra layer for them.
        #: ``submit(lane, job)``: run ``job`` after the lane's earlier jobs.
        self.submit: Callable[[Hashable, Job], None] = lanes.submit
        #: ``queued(lane)``: the lane's jobs not finished yet, the running one included.
        self.queued: Callable[[Hashable], int] = lanes.queued
        #: ``behind(lane)``: the jobs queued behind the lane's running one (to look at).
        self.behind: Callable[[Hashable], list[Job]] = lanes.behind
        #: ``take_next(lane, accept)``: take the job right after the running one if ``accept``
        #: says so (a running job that absorbs the lines queued behind it).
        self.take_next: Callable[[Hashable, Callable[[Job], bool]], Job | None] = lanes.take_next

    async def get(self, network: str, key: PortalKey) -> Portal | None:
        return await self.store.get_portal(network, key)  # type: ignore[return-value]

    async def by_room(self, mxid: str) -> Portal | None:
        return await self.store.get_portal_by_mxid(mxid)  # type: ignore[return-value]

    async def all(self) -> list[Portal]:
        """Every portal that has a room."""
        return await self.store.all_portals()  # type: ignore[return-value]

    def new(self, network: str, key: PortalKey) -> Portal:
        """A portal not stored yet (:meth:`Portal.save` stores it)."""
        return self.make(network=network, key=key)

    async def net_metadata(self, network: str, key: PortalKey) -> Any:
        """A portal's metadata, or the type's default if there is no such portal."""
        portal = await self.get(network, key)
        if portal is None:
            return default_of(self.meta_types(network, "portal"))
        return await portal.net_metadata()

    async def set_net_metadata(self, network: str, key: PortalKey, value: Any) -> None:
        portal = await self.get(network, key)
        if portal is None:
            self.meta_types.check(network, "portal", value)
            raise LookupError(f"no {network} portal {key.id}/{key.receiver} is stored")
        await portal.set_net_metadata(value)

    # -- lanes (for the outbox: its events may come before their portal) --------------------

    @staticmethod
    def lane(network: str, key: PortalKey) -> Lane:
        """The lane of the portal ``(network, key)``, whether or not it exists yet."""
        return (network, key)
