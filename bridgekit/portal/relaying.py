"""Relay mode at runtime: how a message relayed for a Matrix user without a login is marked.

A network that cannot show who sent a message gets it labelled on every line
(:class:`~bridgekit.portal.relay.RelayFormat`, or by a
:class:`~bridgekit.contract.connector.RelayLineHandler` itself); one that shows a sender's name and
avatar itself (:class:`~bridgekit.contract.connector.RendersRelaySender`: Discord webhooks, Slack
``username``) gets the content untouched and a :class:`~bridgekit.portal.relay.RelaySender`. Either
way the name is the room member name, cleaned and told apart from the room's other members.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mautrix.types import Membership

from ..contract.connector import NetworkClient, RelayLineHandler, RendersRelaySender
from ..contract.relay_format import RelayFormat, RelaySender
from ..matrix.media import linkable
from .relay import clean_name, relay_name

if TYPE_CHECKING:
    from ..contract.events import MatrixMessage
    from ..matrix.client import MatrixClient
    from ..settings import RelaySettings

log = logging.getLogger("bridgekit.portal.portals")


@dataclass(frozen=True)
class RelayRuntime:
    """What relaying reads of the runtime: room members (the Matrix client's state store),
    signed avatar links (``Bridge.media_url``) and the label formats (``bridge.relay``)."""

    matrix: MatrixClient
    settings: RelaySettings
    media_url: Callable[[str, str], Awaitable[str]]


async def _member(rt: RelayRuntime, room_id: str, mxid: str) -> tuple[Any, list[Any] | None]:
    """(``mxid``'s member event content or None, every member's (mxid, display name) or None
    when unknown). The list is fetched once per room, then kept by the member events."""
    store = rt.matrix.state_store
    members: dict[str, Any] | None = None
    try:
        if not await store.has_full_member_list(room_id):
            bot = rt.matrix.bot
            assert bot is not None
            joined = await bot.get_joined_members(room_id)
            await store.set_members(room_id, joined, only_membership=Membership.JOIN)
        members = await store.get_member_profiles(room_id)
    except Exception as e:
        log.warning("Members of %s unknown (%s): relayed names carry the Matrix id", room_id, e)
    own = members.get(mxid) if members is not None else None
    if own is None:
        with contextlib.suppress(Exception):
            own = await store.get_member(room_id, mxid)
    others = None
    if members is not None:
        others = [(user, member.displayname) for user, member in members.items()]
    return own, others


async def sender_name(rt: RelayRuntime, room_id: str, mxid: str) -> str:
    """The sender's name for the relay label (see :func:`~bridgekit.portal.relay.relay_name`)."""
    own, others = await _member(rt, room_id, mxid)
    return relay_name(mxid, own.displayname if own else None, others)


async def relay_sender(rt: RelayRuntime, room_id: str, mxid: str) -> RelaySender:
    """Name and avatar of a relayed sender, safe to hand to a network: the avatar as a signed
    media link (the network cannot fetch ``mxc://``), or None when there is none to link."""
    own, others = await _member(rt, room_id, mxid)
    avatar = getattr(own, "avatar_url", None) if own else None
    link = None
    if linkable(avatar):
        try:
            link = await rt.media_url(str(avatar), "avatar")
        except ValueError:
            link = None
    name = relay_name(mxid, own.displayname if own else None, others)
    # The sender as the homeserver checked it, whole (a truncated id would name someone else).
    printable = "".join(ch for ch in mxid if ch.isprintable())
    return RelaySender(mxid=printable, displayname=name, avatar_url=link)


async def mark_relayed(rt: RelayRuntime, msg: MatrixMessage, client: NetworkClient) -> None:
    """Mark ``msg`` as relayed for its sender: a :class:`RelaySender` for a client that shows
    senders itself (content untouched), else the label, applied to every line of the body
    unless the client labels its lines itself."""
    if isinstance(client, RendersRelaySender):
        msg.relay_sender = await relay_sender(rt, msg.room_id, msg.sender)
        return
    mc = msg.content
    if mc.msgtype == "m.emote":
        fmt = rt.settings.emote_format
        mc.msgtype = "m.text"
    else:
        fmt = rt.settings.format
    name = await sender_name(rt, msg.room_id, msg.sender)
    msg.relay = RelayFormat(fmt, name, clean_name(msg.sender))
    if not isinstance(client, RelayLineHandler):
        msg.relay.apply(mc)
