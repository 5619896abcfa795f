"""A MUC room as the component sees it: its XMPP occupants, our occupants, its listener.

Every Matrix user in a portal is an occupant of its MUC under their own nick; the room's
*listener* is the one of them whose copy of each stanza is bridged. Kept apart from the
manager that drives joins and presences so that the state (and the small rules on it:
power from affiliation and role, who takes over as listener) reads on its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bridgekit.contract.events import ChatMember, PortalKey

from .jid import safe_nick

#: The resource of our occupants' full JIDs (``puppet@component/bridgekit``).
RESOURCE = "bridgekit"
AFFILIATION_POWER = {"owner": 100, "admin": 50}


def power_of(affiliation: str, role: str) -> int:
    level = AFFILIATION_POWER.get(affiliation, 0)
    return max(level, 50) if role == "moderator" else level


class JoinError(Exception):
    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}{': ' + text if text else ''}")
        self.condition = condition
        self.text = text


#: Join errors that are the room's access rules (XEP-0045 7.2), as "You ... the XMPP room".
ACCESS_REFUSALS = {
    "forbidden": "are banned from",
    "registration-required": "are not a member of (members-only)",
    "not-authorized": "need a password for",
    "service-unavailable": "could not join (it is full)",
}


@dataclass
class Occupant:
    nick: str
    remote_id: str
    affiliation: str = "none"
    role: str = "participant"
    show: str = ""
    status: str | None = None


def matrix_presence(show: str) -> str:
    """XMPP ``show`` -> Matrix presence: away, xa and dnd are all "unavailable"."""
    return "online" if show in ("", "chat") else "unavailable"


@dataclass
class Room:
    jid: str
    occupants: dict[str, Occupant] = field(default_factory=dict)  # XMPP users, by nick
    ours: dict[str, str] = field(default_factory=dict)  # our occupants: nick -> login id
    nick_of: dict[str, str] = field(default_factory=dict)  # login id -> nick (joined/joining)
    joins: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    listener: str | None = None
    subject: str | None = None
    #: The room advertises XEP-0421 occupant ids (only then are they not the sender's own).
    occupant_ids: bool | None = None

    @property
    def key(self) -> PortalKey:
        return PortalKey(self.jid)

    def joined(self, login_id: str) -> bool:
        return login_id in self.nick_of and login_id not in self.joins

    def members(self) -> list[ChatMember]:
        """The XMPP occupants as seen by the listener (Matrix users' own are not ghosts)."""
        return [
            ChatMember(o.remote_id, power_of(o.affiliation, o.role), name=o.nick)
            for o in self.occupants.values()
        ]

    @property
    def members_complete(self) -> bool:
        """The room sends every occupant's presence before the joiner's own (XEP-0045 7.2.3):
        once its listener is in, the occupants are everyone."""
        return self.listener is not None and self.joined(self.listener)

    def drop(self, login_id: str) -> None:
        nick = self.nick_of.pop(login_id, None)
        if nick is not None and self.ours.get(nick) == login_id:
            del self.ours[nick]
        if self.listener == login_id:
            # Hand over to another joined occupant: it has received every stanza too.
            self.listener = next((lid for lid in self.nick_of if self.joined(lid)), None)
            if self.listener is None:
                self.occupants.clear()


def nick_candidates(nick: str) -> list[str]:
    """The nicks tried in turn when a room says the wanted one is taken."""
    nick = safe_nick(nick)
    return [nick, f"{nick} [m]", f"{nick} [m2]", f"{nick} [m3]"]
