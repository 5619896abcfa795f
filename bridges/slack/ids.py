"""How Slack ids become bridgekit ids, and back.

Slack ids are upper case (``T0001``, ``U0002``, ``C0003``); Matrix user ids must be lower case,
so the bridge's ids are the lower-cased ``team-id`` pairs, reversed with ``.upper()``. The team
is part of every id: a user or channel id is only unique within its workspace (and shared
channels of Slack Connect show one channel in two workspaces, each with its own portal).

* a Slack user -> ghost remote id ``t0001-u0002`` (``@_slack_t0001-u0002:example.org``);
* a channel -> portal key id ``t0001-c0003``: receiver ``""`` for channels and private
  channels (one portal per channel, whoever of the workspace is logged in), the personal
  login's id for DMs and group DMs (only that user sees them);
* a message -> its ``ts``; a file of a message -> the part ``file:<F id>``.
"""

from __future__ import annotations

import re

from bridgekit.contract.events import PortalKey, RemoteChatID, RemoteUserID

_ID_RE = re.compile(r"^[A-Z0-9]{2,32}$")
_PAIR_RE = re.compile(r"^([a-z0-9]{2,32})-([a-z0-9]{2,32})$")


def is_slack_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def user_rid(team: str, user: str) -> RemoteUserID:
    return RemoteUserID(f"{team}-{user}".lower())


def parse_user_rid(rid: str) -> tuple[str, str] | None:
    """(team, user) of a ghost remote id, or None if it is not one of ours."""
    m = _PAIR_RE.match(rid)
    return (m.group(1).upper(), m.group(2).upper()) if m else None


def chat_rid(team: str, channel: str) -> RemoteChatID:
    return RemoteChatID(f"{team}-{channel}".lower())


def parse_chat_rid(rid: str) -> tuple[str, str] | None:
    """(team, channel) of a portal key id, or None."""
    m = _PAIR_RE.match(rid)
    return (m.group(1).upper(), m.group(2).upper()) if m else None


def is_dm_channel(channel: str) -> bool:
    """``D…`` channels are DMs; group DMs (mpim) are ``C``/``G`` ids and are told by their
    ``is_mpim`` flag, not their id."""
    return channel.startswith("D")


def portal_key(team: str, channel: str, receiver: str = "") -> PortalKey:
    return PortalKey(chat_rid(team, channel), receiver)


def file_part(file_id: str) -> str:
    return f"file:{file_id}"
