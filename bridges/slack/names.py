"""Who a Slack text names, and the lookups both converters use; no I/O.

The connector calls :func:`mentioned_ids` on a Slack text, resolves the ids (users.info,
conversations.info, its portal table) and hands the answers to the converters in a
:class:`NameTable`, which answers both ways (Slack id -> Matrix, Matrix -> Slack id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol
from urllib.parse import quote

__all__ = [
    "MatrixNames",
    "Mentioned",
    "NameTable",
    "SlackChannel",
    "SlackNames",
    "SlackUser",
    "mentioned_ids",
    "pill_href",
]


class SlackUser(NamedTuple):
    """A Slack user as Matrix shows them: the ghost (or puppeted user) and a display name."""

    mxid: str | None
    name: str


class SlackChannel(NamedTuple):
    """A Slack channel: its portal (``#alias:hs``, ``!id:hs`` or an https link) and name."""

    room: str | None
    name: str


class SlackNames(Protocol):
    """Answers for the ids a Slack text names; lookups only, never I/O."""

    def user(self, user_id: str) -> SlackUser | None: ...

    def channel(self, channel_id: str) -> SlackChannel | None: ...


class MatrixNames(Protocol):
    """The reverse: the Slack id behind a Matrix user or room, if any; lookups only."""

    def slack_user(self, mxid: str) -> str | None: ...

    def slack_channel(self, room: str) -> str | None: ...


@dataclass
class NameTable:
    """Both lookups from two dicts the connector fills after resolving :func:`mentioned_ids`."""

    users: Mapping[str, SlackUser] = field(default_factory=dict)
    channels: Mapping[str, SlackChannel] = field(default_factory=dict)
    # The reverse lookups, built on first use (the table is built per message).
    _by_mxid: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _by_room: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def user(self, user_id: str) -> SlackUser | None:
        return self.users.get(user_id)

    def channel(self, channel_id: str) -> SlackChannel | None:
        return self.channels.get(channel_id)

    def slack_user(self, mxid: str) -> str | None:
        if self._by_mxid is None:
            self._by_mxid = {u.mxid: uid for uid, u in reversed(self.users.items()) if u.mxid}
        return self._by_mxid.get(mxid)

    def slack_channel(self, room: str) -> str | None:
        if self._by_room is None:
            self._by_room = {c.room: cid for cid, c in reversed(self.channels.items()) if c.room}
        return self._by_room.get(room)


class Mentioned(NamedTuple):
    """The ids a Slack text names, each once, in order of appearance."""

    users: list[str]
    channels: list[str]
    usergroups: list[str]
    #: ``here``, ``channel``, ``everyone`` as they appear.
    specials: list[str]


USER_ID_RE = re.compile(r"[UWB][A-Z0-9]{1,31}")
CHANNEL_ID_RE = re.compile(r"[CGD][A-Z0-9]{1,31}")
ANGLE_RE = re.compile(r"<([^<>\n]*)>")
_ENTITY_RE = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
SPECIALS = ("here", "channel", "everyone")


def slack_unescape(text: str) -> str:
    """Slack's own escaping only (``&amp; &lt; &gt;``), in one pass."""
    if "&" not in text:
        return text
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(1)], text)


def mentioned_ids(text: str) -> Mentioned:
    """Every user, channel, user group and special mention in ``text``, code included."""
    users: dict[str, None] = {}
    channels: dict[str, None] = {}
    groups: dict[str, None] = {}
    specials: dict[str, None] = {}
    for match in ANGLE_RE.finditer(text):
        target = match.group(1).partition("|")[0]
        if target.startswith("@") and USER_ID_RE.fullmatch(target[1:]):
            users[target[1:]] = None
        elif target.startswith("#") and CHANNEL_ID_RE.fullmatch(target[1:]):
            channels[target[1:]] = None
        elif target.startswith("!subteam^"):
            groups[target[len("!subteam^") :]] = None
        elif target[1:] in SPECIALS and target.startswith("!"):
            specials[target[1:]] = None
    return Mentioned(list(users), list(channels), list(groups), list(specials))


def pill_href(target: str) -> str:
    """A ``matrix.to`` link for a user ID, room alias or room ID."""
    return "https://matrix.to/#/" + quote(target, safe="@!:._=-/+")
