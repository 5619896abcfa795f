"""What the bridge itself just did on Slack, to recognise it when Slack reports it back.

Slack sends the app an event for every change, including the bridge's own ``chat.update``
(made with a personal token it looks like that user's own edit). The runtime keeps no record
that would tell a remote edit it already shows: each call notes what it does here first, and
the inbound handler drops the matching event once. Bounded; a note not matched expires with
age. (Deletes and reactions need none: the runtime recognises their echoes.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable

#: Notes kept (oldest dropped first) and how long one waits for its echo, in seconds.
MAX_NOTES = 5_000
TTL = 600.0


class Echoes:
    def __init__(self) -> None:
        self._notes: OrderedDict[Hashable, float] = OrderedDict()

    def expect(self, key: Hashable) -> None:
        """The bridge is about to make the change ``key`` names."""
        self._notes[key] = time.monotonic()
        self._notes.move_to_end(key)
        while len(self._notes) > MAX_NOTES:
            self._notes.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        """The call failed: no echo will come."""
        self._notes.pop(key, None)

    def is_echo(self, key: Hashable) -> bool:
        """Whether an event is the echo of a noted change (the note is used up)."""
        noted = self._notes.pop(key, None)
        return noted is not None and time.monotonic() - noted < TTL
