"""The runtime's objects: what a bridge is made of, each owning its state.

* :class:`Portal` (:mod:`.portal`): one remote chat bridged to one Matrix room. Owns its
  ``portal`` row (its fields are the object's persisted state: ``save()``, ``delete()``), the
  connector's typed metadata of that row (``net_metadata()``, ``set_net_metadata()``; the
  ``metadata`` field is the runtime's own) and its ordered queue: the lane in which its remote
  events run one after another (``submit(job)``), while other portals' lanes run in parallel.
* :class:`Ghost` (:mod:`.ghost`): the Matrix user that stands for one remote user. Owns its
  ``ghost`` row (``save()``), its typed metadata, its mxid, and how a reported profile (name,
  avatar, is-bot) reaches its Matrix profile (``update_info(intent, ...)``).
* :class:`User` (:mod:`.user`): a Matrix user of the bridge. Owns its ``user`` row (management
  room, double puppet) and its logins.
* :class:`UserLogin` (:mod:`.user_login`): one login of a user to a network. Owns its
  ``user_login`` row (the contract's ``LoginInfo``), its typed metadata, its network client and
  its connection state. The login service (:class:`bridgekit.logins.LoginService`) keeps one
  per loaded login.

The database layer keeps plain rows (:class:`~bridgekit.database.records.PortalRow`, ...) and
never imports this package; the runtime hands the tables its objects' factories
(:meth:`~bridgekit.database.store.Store.set_factories`), so that each lookup returns the one
object of a portal or ghost. The registries (:class:`Portals`, :class:`Ghosts`) are built with
their collaborators (the store, the connectors' metadata types, the portals' executor), never
with the bridge.
"""

from .ghost import Ghost, Ghosts
from .metadata import MetadataTypes
from .portal import Portal, Portals
from .user import User
from .user_login import UserLogin

__all__ = ["Ghost", "Ghosts", "MetadataTypes", "Portal", "Portals", "User", "UserLogin"]
