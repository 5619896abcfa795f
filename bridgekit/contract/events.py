"""Plain data passed between the runtime and connectors.

Remote events are serialised to JSON for the durable outbox, so they are dataclasses of plain
values; :func:`remote_event_to_json` / :func:`remote_event_from_json` round-trip them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, NewType

from .relay_format import RelayFormat, RelaySender

#: A remote user's id on its network (an IRC nick folded per server, an occupant JID...).
#: Ids carry no network: a connector names only its own network's objects, through the
#: :class:`~bridgekit.contract.connector.BridgeAPI` view bound to it, so an id of one network is
#: never looked up in another's tables.
RemoteUserID = NewType("RemoteUserID", str)
#: A remote chat's id (an IRC channel, a MUC JID): :attr:`PortalKey.id`.
RemoteChatID = NewType("RemoteChatID", str)
#: A remote message's id (an IRCv3 msgid, an XMPP stanza-id).
RemoteMessageID = NewType("RemoteMessageID", str)


@dataclass(frozen=True)
class PortalKey:
    """Identifies a remote chat. ``receiver`` is set for chats private to one login (DMs)."""

    id: RemoteChatID
    receiver: str = ""

    def __str__(self) -> str:
        return f"{self.id}@{self.receiver}" if self.receiver else self.id


@dataclass
class UserInfo:
    name: str | None = None
    avatar_url: str | None = None  # an http(s) URL or mxc:// URI
    is_bot: bool = False


@dataclass
class ChatMember:
    remote_id: RemoteUserID
    #: The member's Matrix power level in the portal room (0: none). Applied to ghosts only,
    #: in one ``m.room.power_levels`` event per list, capped below the bridge bot's own.
    power_level: int = 0
    #: Set when this member is the logged-in user themself (not a ghost).
    is_me: bool = False
    name: str | None = None


@dataclass
class SpaceInfo:
    """The remote container a chat belongs to (an IRC network, a Slack workspace, a Discord
    guild, an XMPP MUC service): the runtime makes one Matrix space per container and adds
    the container's portals to it. ``receiver``: a login id when the container is private to
    that login (one space each), as in :class:`PortalKey`."""

    id: str
    name: str | None = None
    topic: str | None = None
    avatar_url: str | None = None  # an http(s) URL or mxc:// URI
    receiver: str = ""


@dataclass
class ChatInfo:
    name: str | None = None
    topic: str | None = None
    avatar_url: str | None = None
    members: list[ChatMember] = field(default_factory=list)
    #: ``members`` is everyone in the chat (an IRC channel's NAMES, a MUC's occupants after
    #: joining): ghosts of this network in the room that it does not list leave, and its
    #: ghosts' power levels not listed drop to the default. False: the list only adds.
    members_complete: bool = False
    is_dm: bool = False
    #: For DMs: the remote user the chat is with.
    dm_user: RemoteUserID | None = None
    #: Whether anyone may join the room (join rule ``public``) or only the invited: a chat
    #: that is closed on the network (an IRC channel with a key, or invite-only) must not be
    #: readable by whoever finds the room; its room also shows members only what is said
    #: after they join. None: public if the room is made for its alias. A room made because
    #: someone joins its alias starts public regardless (they cannot be invited: the
    #: homeserver does not say who asked); report the chat closed again once it is joined.
    joinable: bool | None = None
    #: The localpart of the chat's alias (what :meth:`AliasResolver.resolve_alias` maps back
    #: to it), so that a room made some other way (a command, an invite) has it too.
    alias: str | None = None
    #: The container the chat belongs to: the portal becomes a child of its space. None
    #: leaves the portal's space as it is.
    parent: SpaceInfo | None = None


@dataclass
class EventSender:
    """Who sent a remote event: a remote user, or the logged-in user themself (``is_me``)."""

    remote_id: RemoteUserID
    is_me: bool = False
    login_id: str | None = None
    #: The sender's current display name, if the event carries it (an IRC nick, a MUC
    #: nick): the ghost's Matrix display name follows it.
    name: str | None = None
    #: The sender's name and avatar (http(s) or ``mxc://``) in this chat only, where the
    #: network has one per community (a Discord guild nickname and guild avatar): the ghost's
    #: member event in the portal's room shows them, its global profile stays ``name``'s.
    #: None: the global one.
    room_name: str | None = None
    room_avatar_url: str | None = None


@dataclass
class MessageContent:
    """A message in network-neutral form (text with optional HTML, or a file)."""

    body: str
    html: str | None = None
    msgtype: str = "m.text"  # m.text, m.emote, m.notice, m.image, m.file, m.video, m.audio
    media_url: str | None = None  # mxc:// to reuse, or http(s):// for the runtime to upload
    media_info: dict[str, Any] = field(default_factory=dict)
    #: Remote id of the message replied to.
    reply_to: RemoteMessageID | None = None
    #: Remote id of the thread root.
    thread_root: RemoteMessageID | None = None
    #: Remote user ids mentioned, turned into Matrix pills and m.mentions.
    mentions: list[RemoteUserID] = field(default_factory=list)
    #: The message notifies the whole room (a network's everyone-mention): ``m.mentions``
    #: gets ``room: true``.
    mentions_room: bool = False


# ---------------------------------------------------------------------------------------------
# Remote -> Matrix


_REMOTE_TYPES: dict[str, type[RemoteEvent]] = {}


@dataclass
class RemoteEvent:
    portal: PortalKey
    sender: EventSender | None = None
    timestamp: float | None = None  # unix seconds; None = now
    #: The connector's name. Set by the runtime when the event is queued (from the
    #: :class:`~bridgekit.contract.connector.BridgeAPI` the connector was given): a connector need
    #: not set it, and cannot queue an event for another network.
    network: str = ""
    kind: ClassVar[str] = "event"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REMOTE_TYPES[cls.kind] = cls


@dataclass
class MessagePart:
    """One Matrix event of a remote message sent as several (text, then each attachment).

    ``id`` names the part within its message, stable across edits ("" for the first one):
    an edit of one attachment names it (:attr:`RemoteEdit.target_part`)."""

    id: str = ""
    content: MessageContent = field(default_factory=lambda: MessageContent(""))


@dataclass
class RemoteMessage(RemoteEvent):
    """A remote message: ``content``, or, for one sent as several Matrix events, ``parts``
    (in order; ``content`` is then unused). Every part maps to the one remote ``id``: a
    reply, reaction, edit or redaction on Matrix of any of them reaches that message."""

    id: RemoteMessageID = RemoteMessageID("")
    content: MessageContent = field(default_factory=lambda: MessageContent(""))
    parts: list[MessagePart] = field(default_factory=list)
    kind: ClassVar[str] = "message"

    def message_parts(self) -> list[MessagePart]:
        """The parts to send: ``content`` alone if there are none. The first part's id is
        always "" and the others' are made unique (a connector's slip must not drop one)."""
        if not self.parts:
            return [MessagePart("", self.content)]
        out = [MessagePart("", self.parts[0].content)]
        seen = {""}
        for i, part in enumerate(self.parts[1:], 1):
            pid = str(part.id or "") or str(i)
            while pid in seen:
                pid = f"{pid}.{i}"
            seen.add(pid)
            out.append(MessagePart(pid, part.content))
        return out


@dataclass
class RemoteEdit(RemoteEvent):
    target_id: RemoteMessageID = RemoteMessageID("")
    content: MessageContent = field(default_factory=lambda: MessageContent(""))
    #: Which part of a message in parts is edited (its :attr:`MessagePart.id`). None: the
    #: first part (the text, where the message has some), or the only one.
    target_part: str | None = None
    kind: ClassVar[str] = "edit"


@dataclass
class RemoteRedaction(RemoteEvent):
    target_id: RemoteMessageID = RemoteMessageID("")
    reason: str | None = None
    kind: ClassVar[str] = "redaction"


@dataclass
class RemoteReaction(RemoteEvent):
    """A reaction: ``key`` is the emoji (or, for a custom emoji, its text fallback). A custom
    emoji (an image the network's users made) sets ``emoji_id`` (its id on the network),
    ``emoji_url`` (its image: http(s), fetched through the guarded fetcher, or mxc) and
    ``emoji_name`` (its shortcode without colons): the runtime uploads each emoji's image once
    and reacts with its ``mxc://`` URI as the key (MSC4027)."""

    target_id: RemoteMessageID = RemoteMessageID("")
    key: str = ""
    emoji_id: str | None = None
    emoji_url: str | None = None
    emoji_name: str | None = None
    kind: ClassVar[str] = "reaction"


@dataclass
class RemoteReactionRemove(RemoteEvent):
    """A reaction removed: the same ``key``, or the same ``emoji_id`` for a custom emoji."""

    target_id: RemoteMessageID = RemoteMessageID("")
    key: str = ""
    emoji_id: str | None = None
    kind: ClassVar[str] = "reaction_remove"


@dataclass
class RemoteTyping(RemoteEvent):
    typing: bool = True
    timeout_ms: int = 5000
    kind: ClassVar[str] = "typing"


@dataclass
class RemoteReceipt(RemoteEvent):
    last_read_id: RemoteMessageID = RemoteMessageID("")
    kind: ClassVar[str] = "receipt"


@dataclass
class RemoteChatInfoChange(RemoteEvent):
    name: str | None = None
    topic: str | None = None
    avatar_url: str | None = None
    #: The chat opened (True) or closed (False) on the network: the room's join rule follows
    #: (not in DMs, nor in plumbed rooms, whose join rules are their admins').
    joinable: bool | None = None
    kind: ClassVar[str] = "chat_info"


@dataclass
class RemoteMembership(RemoteEvent):
    target: RemoteUserID = RemoteUserID("")
    membership: str = "join"  # join, leave, kick, ban
    reason: str | None = None
    power_level: int | None = None
    kind: ClassVar[str] = "membership"


@dataclass
class RemotePresence(RemoteEvent):
    presence: str = "online"  # online, unavailable, offline
    status_msg: str | None = None
    kind: ClassVar[str] = "presence"


@dataclass
class RemoteChatResync(RemoteEvent):
    info: ChatInfo | None = None
    kind: ClassVar[str] = "resync"


@dataclass
class RemoteBackfill(RemoteEvent):
    """History for the portal, in its ordered queue (see :mod:`bridgekit.portal.backfill`): either
    ``messages`` a connector pushes (oldest first), or, without them, a request that the
    runtime fetch ``direction`` ("forward": what came after ``anchor``, the newest message
    bridged when the request was made) when its turn comes, so live events queued after it
    wait for what came before them."""

    messages: list[RemoteMessage] = field(default_factory=list)
    direction: str = "forward"
    anchor: str | None = None
    kind: ClassVar[str] = "backfill"


@dataclass
class RemoteUserInfoChange(RemoteEvent):
    """A remote user's profile changed: ``sender.remote_id`` is whose. None leaves a field as
    it is; ``avatar_url=""`` removes the avatar. The ghost follows on Matrix (whether or not
    it is in a room yet); a report of what the ghost already shows costs no homeserver
    request, and each distinct image is uploaded once (see
    :meth:`~bridgekit.contract.connector.BridgeAPI.upload_avatar` for avatars a network gives as
    bytes). ``portal`` only orders the change among that chat's events: any chat the user is
    in, or ``PortalKey("")``."""

    name: str | None = None
    avatar_url: str | None = None  # an http(s) URL or mxc:// URI; "" = no avatar
    is_bot: bool | None = None
    kind: ClassVar[str] = "user_info"


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _from_dict(tp, value)
    return value


_NESTED: dict[str, type] = {
    "portal": PortalKey,
    "sender": EventSender,
    "content": MessageContent,
    "info": ChatInfo,
    "parent": SpaceInfo,
}


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            continue
        if key in _NESTED and value is not None:
            value = _from_dict(_NESTED[key], value)
        elif key == "members":
            value = [_from_dict(ChatMember, m) for m in value]
        elif key == "messages":
            value = [_from_dict(RemoteMessage, m) for m in value]
        elif key == "parts" and isinstance(value, list):
            value = [_from_dict(MessagePart, p) for p in value if isinstance(p, dict)]
        kwargs[key] = value
    return cls(**kwargs)


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _to_plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copy of every value (json only reads them):
    a quarter of the time, on the path of every remote event."""
    cls = type(value)
    try:
        names = _FIELD_NAMES[cls]
    except KeyError:
        is_dc = dataclasses.is_dataclass(cls)
        names = _FIELD_NAMES[cls] = (
            tuple(f.name for f in dataclasses.fields(cls)) if is_dc else None
        )
    if names is not None:
        return {name: _to_plain(getattr(value, name)) for name in names}
    if type(value) is list:
        return [_to_plain(v) for v in value]
    return value


def remote_event_to_json(event: RemoteEvent) -> str:
    data = _to_plain(event)
    data["kind"] = event.kind
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def remote_event_from_json(raw: str) -> RemoteEvent:
    data = json.loads(raw)
    cls = _REMOTE_TYPES[data.pop("kind")]
    return _from_dict(cls, data)


# ---------------------------------------------------------------------------------------------
# Matrix -> remote


@dataclass
class MatrixEventBase:
    portal: PortalKey
    room_id: str
    event_id: str
    sender: str  # Matrix user id
    timestamp: float
    #: Set when the message is relayed for a Matrix user without their own login.
    relayed_for: str | None = None
    #: Display name of the Matrix sender in this room.
    sender_name: str = ""


@dataclass
class MatrixMessage(MatrixEventBase):
    content: MessageContent = field(default_factory=lambda: MessageContent(""))
    #: Remote id (and remote sender) of the message replied to, if it was bridged.
    reply_to_sender: str | None = None
    #: Plain text of the message replied to (for networks that quote).
    reply_to_body: str | None = None
    #: Remote id of the thread root of the message replied to, when that message is in a
    #: thread and this one is not (a reply from the main timeline to a thread message):
    #: networks whose replies are threads (Slack) answer in that thread.
    reply_to_thread: RemoteMessageID | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    #: Set with ``relayed_for``: the label of the relayed sender. Already applied to every line
    #: of ``content``, unless the client is a
    #: :class:`~bridgekit.contract.connector.RelayLineHandler`. None for a
    #: :class:`~bridgekit.contract.connector.RendersRelaySender`: see ``relay_sender``.
    relay: RelayFormat | None = None
    #: Set with ``relayed_for`` for a :class:`~bridgekit.contract.connector.RendersRelaySender`
    #: client: the sender's (sanitised) name and avatar link; ``content`` is then as the sender
    #: wrote it.
    relay_sender: RelaySender | None = None
    #: True when the bridge stopped after handing this message to the network but before it
    #: recorded the result: the network may already have it. Connectors that can deduplicate
    #: (a nonce, a client message id, the event id) should; others send it again.
    maybe_sent: bool = False
    #: Whether the sender's power level reaches the room's ``notifications.room`` (the power
    #: to notify everyone with ``@room``): a network's everyone-mention (Slack's
    #: ``<!channel>``) must come only from those who have it. False when unknown.
    may_mention_room: bool = False


@dataclass
class MatrixEdit(MatrixEventBase):
    target_id: RemoteMessageID = RemoteMessageID("")
    content: MessageContent = field(default_factory=lambda: MessageContent(""))
    old_body: str = ""
    #: Set (with ``relayed_for``) when a relayed message is edited through a
    #: :class:`~bridgekit.contract.connector.RendersRelaySender` client; other clients never get
    #: relayed edits (they get the ``* new text`` message, labelled).
    relay_sender: RelaySender | None = None
    #: The edited part of a remote message in parts (:attr:`MessagePart.id`; "" the first).
    target_part: str = ""
    #: As :attr:`MatrixMessage.may_mention_room`.
    may_mention_room: bool = False


@dataclass
class MatrixRedaction(MatrixEventBase):
    #: Remote id of the redacted message or reaction.
    target_id: RemoteMessageID = RemoteMessageID("")
    target_is_reaction: bool = False
    reason: str | None = None
    #: The redaction is a room moderator's, of another's message (the homeserver checked
    #: their power to redact it): only for a
    #: :class:`~bridgekit.contract.connector.ModeratesMessages` client.
    by_moderator: bool = False


@dataclass
class MatrixReaction(MatrixEventBase):
    target_id: RemoteMessageID = RemoteMessageID("")
    key: str = ""
    #: When ``key`` is the ``mxc://`` image of a custom emoji the network reported (see
    #: :class:`RemoteReaction`): its id on the network, and its name (shortcode, no colons).
    emoji_id: str | None = None
    emoji_name: str | None = None


@dataclass
class MatrixReactionRemove(MatrixEventBase):
    target_id: RemoteMessageID = RemoteMessageID("")
    key: str = ""
    emoji_id: str | None = None  # as in MatrixReaction


@dataclass
class MatrixTyping:
    portal: PortalKey
    room_id: str
    user_id: str
    typing: bool


@dataclass
class MatrixReadReceipt:
    portal: PortalKey
    room_id: str
    user_id: str
    event_id: str
    remote_id: str | None


@dataclass
class MatrixPresence:
    user_id: str
    presence: str
    status_msg: str | None = None


@dataclass
class MatrixMembership(MatrixEventBase):
    target: str = ""  # Matrix user id, or a ghost's remote id in target_remote
    target_remote: str | None = None
    membership: str = "join"  # join, leave, kick, ban, invite
    reason: str | None = None


@dataclass
class MatrixRoomMeta(MatrixEventBase):
    name: str | None = None
    topic: str | None = None
    avatar_url: str | None = None
    #: Users whose Matrix power level changed, with their new level (bridge bot left out).
    power_levels: dict[str, int] | None = None
