"""The portal services, wired together: what ``bridge.portals`` holds.

Each service takes its collaborators in its constructor; this object only makes them, in
dependency order, and names them for the rest of the runtime:

- :class:`~.puppets.Puppets`: ghost intents and profiles, double puppets, avatars and media;
- :class:`~.member_sync.MemberSync`: a chat's member list and power levels on its room;
- :class:`~.rooms.Rooms`: finding or creating a portal's room (``get_or_create``), its state;
- :class:`~.remote_to_matrix.RemoteToMatrix`: remote events into rooms (the outbox calls it);
- :class:`~.matrix_to_remote.MatrixToRemote`: Matrix events to connector calls (the router's);
- :class:`~.custom_emoji.CustomEmojis` and the :class:`~.send_gate.SendGate` both directions share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .custom_emoji import CustomEmojis
from .matrix_to_remote import MatrixToRemote
from .member_sync import MemberSync
from .puppets import Puppets
from .remote_to_matrix import RemoteToMatrix
from .rooms import Rooms
from .send_gate import SendGate

if TYPE_CHECKING:
    from ..bridge import Bridge


class PortalService:
    """The portal services of one bridge (see the module's docstring)."""

    def __init__(self, bridge: Bridge) -> None:
        self.puppets = Puppets(
            matrix=bridge.matrix,
            store=bridge.store,
            fetcher=bridge.fetcher,
            config=bridge.config,
            clients=bridge.clients,
            ghost_mxid=bridge.ghost_mxid,
        )
        self.emojis = CustomEmojis(bridge.store, self.puppets.avatar_mxc)
        self.member_sync = MemberSync(bridge, self.puppets)
        self.rooms = Rooms(bridge, self.puppets, self.member_sync)
        #: Held while a Matrix event goes out, so the portal's remote events wait for its ids.
        self.gate = SendGate()
        self.remote_to_matrix = RemoteToMatrix(
            bridge,
            puppets=self.puppets,
            rooms=self.rooms,
            member_sync=self.member_sync,
            emojis=self.emojis,
            gate=self.gate,
        )
        self.matrix_to_remote = MatrixToRemote(bridge, emojis=self.emojis, gate=self.gate)
