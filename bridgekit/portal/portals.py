"""The portal services, wired together: what ``bridge.portals`` holds.

Each service takes its collaborators in its constructor; this object only makes them, in
dependency order, and names them for the rest of the runtime:

- :class:`~.puppets.Puppets`: ghost intents and profiles, double puppets, avatars and media;
- :class:`~.member_sync.MemberSync`: a chat's member list and power levels on its room;
- :class:`~.rooms.Rooms`: finding or creating a portal's room (``get_or_create``), its state;
- :class:`~.remote_to_matrix.RemoteToMatrix`: remote events into rooms (the outbox calls it);
- :class:`~.matrix_to_remote.MatrixToRemote`: Matrix events to connector calls (the router's),
  sent by the client :class:`~.clients.SenderClients` chooses for their sender;
- :class:`~.custom_emoji.CustomEmojis` and the :class:`~.send_gate.SendGate` both directions share.

What is made after these services, from them (spaces, backfill, the router and the commands),
is handed over by :meth:`PortalService.attach`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .clients import SenderClients
from .custom_emoji import CustomEmojis
from .matrix_to_remote import MatrixToRemote
from .member_sync import MemberSync
from .puppets import Puppets
from .relaying import RelayRuntime
from .remote_to_matrix import RemoteToMatrix
from .rooms import Rooms
from .send_gate import SendGate

if TYPE_CHECKING:
    from ..config import Config
    from ..contract.connector import LoginInfo, NetworkClient, NetworkConnector
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from ..matrix.fetcher import MediaFetcher
    from ..matrix.message_status import StatusReporter
    from ..metrics import Metrics
    from .presence import PresenceKeeper
    from .rooms import HistoryFiller, SpacePlacer


class PortalService:
    """The portal services of one bridge (see the module's docstring)."""

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        matrix: MatrixClient,
        fetcher: MediaFetcher,
        metrics: Metrics,
        presence: PresenceKeeper,
        status: StatusReporter,
        connectors: Mapping[str, NetworkConnector],
        clients: Mapping[str, NetworkClient],
        clients_of: Callable[[str, str], Iterable[NetworkClient]],
        add_login: Callable[[LoginInfo], Awaitable[NetworkClient]],
        ghost_mxid: Callable[[str, str], str],
        connector_for_ghost: Callable[[str], tuple[NetworkConnector, str] | None],
        media_url: Callable[[str, str], Awaitable[str]],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        settings = config.settings.bridge
        self.puppets = Puppets(
            matrix=matrix,
            store=store,
            fetcher=fetcher,
            config=config,
            clients=clients,
            ghost_mxid=ghost_mxid,
        )
        self.emojis = CustomEmojis(store, self.puppets.avatar_mxc)
        self.member_sync = MemberSync(
            matrix=matrix,
            puppets=self.puppets,
            connectors=connectors,
            bot_mxid=config.bot_mxid,
            domain=config.domain,
            ghost_mxid=ghost_mxid,
            spawn=spawn,
        )
        self.rooms = Rooms(
            store=store,
            matrix=matrix,
            clients=clients,
            connectors=connectors,
            bot_mxid=config.bot_mxid,
            puppets=self.puppets,
            member_sync=self.member_sync,
        )
        #: Held while a Matrix event goes out, so the portal's remote events wait for its ids.
        self.gate = SendGate()
        self.remote_to_matrix = RemoteToMatrix(
            store=store,
            matrix=matrix,
            clients=clients,
            metrics=metrics,
            presence=presence,
            ghost_mxid=ghost_mxid,
            puppets=self.puppets,
            rooms=self.rooms,
            member_sync=self.member_sync,
            emojis=self.emojis,
            gate=self.gate,
        )
        self.senders = SenderClients(
            connectors=connectors,
            clients=clients,
            clients_of=clients_of,
            add_login=add_login,
            relay=settings.relay,
        )
        self.matrix_to_remote = MatrixToRemote(
            store=store,
            matrix=matrix,
            metrics=metrics,
            settings=settings,
            senders=self.senders,
            connector_for_ghost=connector_for_ghost,
            bot_mxid=config.bot_mxid,
            relaying=RelayRuntime(matrix, settings.relay, media_url),
            status=status,
            emojis=self.emojis,
            gate=self.gate,
        )

    def attach(
        self,
        *,
        spaces: SpacePlacer,
        backfill: HistoryFiller,
        level_of: Callable[[str], int],
        ensure_user: Callable[[str], Awaitable[object]],
    ) -> None:
        """Hand over what is made after these services, from them: the spaces (which copy
        avatars through :attr:`puppets`), the backfill (which sends through
        :attr:`remote_to_matrix`), the router's power levels and the commands' user rows."""
        self.rooms.spaces = self.remote_to_matrix.spaces = spaces
        self.rooms.backfill = self.remote_to_matrix.backfill = backfill
        self.senders.level_of = level_of
        self.senders.ensure_user = ensure_user
