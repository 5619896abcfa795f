"""The runtime's persistence: one :class:`Store` that composes the table modules.

Each table (or tight group of tables) has its module here, holding its SQL and its in-memory
cache: :mod:`.portals`, :mod:`.ghosts` (and avatars), :mod:`.users`, :mod:`.logins`,
:mod:`.messages` (and aliases, reactions), :mod:`.transactions`, :mod:`.outbox`, :mod:`.kv`,
:mod:`.spaces`, :mod:`.backfill`, :mod:`.net_metadata` (the connectors' typed metadata);
writes that many callers make share :mod:`.commit` (the group commit). SQL is written once for
both engines (``$n`` placeholders, no engine-specific syntax outside
``bridgekit/database/migrations/``) and never built from values: lists are expanded into
placeholders, never into text.

Callers use the Store's methods (``bridge.store.get_portal(...)``): they are the tables' own
bound methods, set once here, so a call costs no extra layer on the hot paths.
"""

from __future__ import annotations

from collections.abc import Callable

from mautrix.util.async_db import Database, Scheme

from . import sqlite_work
from .backfill import BackfillTable
from .commit import GroupCommit
from .ghosts import GhostTable
from .kv import KVTable
from .logins import LoginTable
from .messages import MessageTable
from .net_metadata import MetadataStore
from .outbox import OutboxTable
from .portals import PortalTable
from .records import LRU, BridgeUser, GhostRow, MessageRow, OutboxItem, PortalRow, ReactionRow
from .spaces import SpaceTable
from .transactions import TransactionTable, TxnStored
from .users import UserTable

__all__ = [
    "LRU", "BridgeUser", "GhostRow", "MessageRow", "OutboxItem", "PortalRow", "ReactionRow",
    "Store", "TxnStored",
]  # fmt: skip


class Store:
    """The runtime's persistence. One instance per bridge process."""

    def __init__(self, db: Database, txn_db: Database | None = None) -> None:
        self.db = db
        #: SQLite: the transactions' file (database/inbox.py), with its own connections and
        #: write lock, so acknowledging a transaction never waits for the main file's.
        self.txn_db = txn_db or db
        self._sqlite = db.scheme == Scheme.SQLITE
        self._txn_sqlite = self.txn_db.scheme == Scheme.SQLITE
        self.commit = commit = GroupCommit(db)
        #: Connectors' typed metadata of portal, ghost and login rows (database/net_metadata.py).
        self.net_metadata = MetadataStore(db, commit.write)
        self.portals = portals = PortalTable(db)
        self.ghosts = ghosts = GhostTable(db)
        self.users = users = UserTable(db)
        self.user_logins = logins = LoginTable(db, self.net_metadata)
        self.messages = messages = MessageTable(db, commit)
        self.transactions = txns = TransactionTable(db, self.txn_db, commit)
        self.outbox = outbox = OutboxTable(db, commit)
        self.kv = kv = KVTable(db, commit)
        self.spaces = SpaceTable(db)
        self.backfill = BackfillTable(db)

        self.is_portal_room = portals.is_portal_room
        self.get_portal = portals.get_portal
        self.get_portal_by_mxid = portals.get_portal_by_mxid
        self.all_portals = portals.all_portals
        self.save_portal = portals.save_portal
        self.new_portal = portals.new_portal

        self.get_ghost = ghosts.get_ghost
        self.save_ghost = ghosts.save_ghost
        self.new_ghost = ghosts.new_ghost
        self.get_avatar = ghosts.get_avatar
        self.save_avatar = ghosts.save_avatar

        self.get_user = users.get_user
        self.all_users = users.all_users
        self.save_user = users.save_user
        #: Every management room (a Matrix event's room is looked up here).
        self.management_rooms = users.management_rooms

        self.save_login = logins.save_login
        self.delete_login = logins.delete_login
        self.logins = logins.logins

        self.add_message = messages.add_message
        self.add_message_soon = messages.add_message_soon
        self.message_by_remote = messages.message_by_remote
        self.known_remote_ids = messages.known_remote_ids
        self.message_parts = messages.message_parts
        self.message_by_event = messages.message_by_event
        self.message_in_portal = messages.message_in_portal
        self.last_message = messages.last_message
        self.last_remote_message = messages.last_remote_message
        self.delete_message = messages.delete_message
        self.add_reaction = messages.add_reaction
        self.get_reaction = messages.get_reaction
        self.reaction_by_event = messages.reaction_by_event
        self.reaction_in_portal = messages.reaction_in_portal
        self.delete_reaction = messages.delete_reaction

        self.store_transaction = txns.store_transaction
        self.finish_transactions = txns.finish_transactions
        self.pending_transactions = txns.pending_transactions
        self.prune_transactions = txns.prune_transactions
        self.settle_transactions = txns.settle_transactions

        self.outbox_add_many = outbox.outbox_add_many
        self.outbox_merge = outbox.outbox_merge
        self.outbox_done_later = outbox.outbox_done_later
        self.outbox_pending = outbox.outbox_pending

        self.get_kv = kv.get_kv
        self.kv_with_prefix = kv.kv_with_prefix
        self.set_kv = kv.set_kv
        self.set_kv_soon = kv.set_kv_soon

    def set_factories(
        self,
        *,
        portal: Callable[..., PortalRow] = PortalRow,
        ghost: Callable[..., GhostRow] = GhostRow,
    ) -> None:
        """What the portal and ghost tables build their rows with (before :meth:`load`): the
        runtime gives its object classes' factories (bridgekit/objects), so every lookup
        returns the one object of each portal or ghost; the plain rows otherwise."""
        self.portals.make = portal
        self.ghosts.make = ghost

    @property
    def is_sqlite(self) -> bool:
        return self.db.scheme == Scheme.SQLITE

    def attach_loop_connection(self) -> None:
        """SQLite: small units of work run on the event loop's own connection (sqlite_work)."""
        if self._sqlite:
            sqlite_work.attach(self.db)
        if self._txn_sqlite and self.txn_db is not self.db:
            sqlite_work.attach(self.txn_db)  # a file of its own: a connection of its own

    async def detach_loop_connection(self) -> None:
        await sqlite_work.detach(self.db, self.txn_db)

    async def load(self) -> None:
        """Load portals and users into memory: from then on they are looked up without SQL
        (every Matrix event asks "is this a portal or a management room?")."""
        await self.portals.load()
        await self.users.load()

    async def flush(self) -> None:
        """Wait for every queued write, deferred deletions included (before stopping)."""
        self.outbox.commit_done_later()
        await self.commit.flush()

    async def delete_portal(self, portal: PortalRow) -> None:
        """Delete a portal with its messages and reactions, in one transaction."""
        async with self.db.acquire() as conn, conn.transaction():
            await self.messages.delete_portal_rows(conn, portal)
            await self.portals.delete_row(conn, portal)
        self.portals.forget(portal)
        self.net_metadata.forget("portal", portal.network, (portal.key.id, portal.key.receiver))
        self.messages.forget_cached()
