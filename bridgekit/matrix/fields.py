"""The fields the bridge reads from a Matrix event, checked once where the event comes in.

Homeservers do not check event content: a client may send a list or a number where the spec
wants a string (Synapse accepts ``"m.relates_to": {"event_id": ["$a"]}``). Such a value that
reached a database row failed the whole group commit it rode in (another room's mappings,
the transaction's "finished" mark), and the transaction was then replayed at every start. So
the router calls :func:`check_event` before a portal sees an event: a malformed event is
refused as a whole (a log line, and a notice to its sender), and everything after it
(:mod:`bridgekit.portal.matrix_to_remote`) reads fields whose types and lengths are known, relations
through :func:`relation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The spec's limit for event, room and user ids (bytes; they are ASCII in practice).
MAX_ID = 255
#: Names: rel_type, msgtype, format, membership, a reaction key.
MAX_NAME = 255
#: Text (body, formatted_body, a topic): a whole event is at most 64 KiB on Synapse.
MAX_TEXT = 65_536


class MalformedEvent(ValueError):
    """An event field of the wrong type or size; the message names the field."""


@dataclass(frozen=True)
class Relation:
    """``m.relates_to`` of an event, typed (all None when the event has none)."""

    rel_type: str | None = None
    event_id: str | None = None
    #: ``m.in_reply_to.event_id``: the event replied to.
    reply_to: str | None = None
    #: Annotation key (reactions).
    key: str | None = None
    is_falling_back: bool = False


NO_RELATION = Relation()


def _text(value: Any, name: str, limit: int, optional: bool = True) -> str | None:
    """``value`` if it is a string of at most ``limit`` characters that can be stored and
    sent (UTF-8, and for ids and names no NUL, which PostgreSQL text cannot hold)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise MalformedEvent(f"{name} is longer than {limit} characters")
    if not value.isascii():  # ASCII (most ids and text) is valid UTF-8: no copy to find out
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedEvent(f"{name} is not valid Unicode") from None
    if limit <= MAX_NAME and "\x00" in value:
        raise MalformedEvent(f"{name} contains a NUL character")
    return value


def _object(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedEvent(f"{name} must be an object, not {type(value).__name__}")
    return value


def relation(content: dict[str, Any]) -> Relation:
    """The typed ``m.relates_to`` of ``content``; raises :class:`MalformedEvent`."""
    rel = content.get("m.relates_to")
    if rel is None:  # most events: read several times per event, so no call for it
        return NO_RELATION
    rel = _object(rel, "m.relates_to")
    if not rel:
        return NO_RELATION
    reply = _object(rel.get("m.in_reply_to"), "m.relates_to.m.in_reply_to") or {}
    falling_back = rel.get("is_falling_back", False)
    if not isinstance(falling_back, bool):
        raise MalformedEvent("m.relates_to.is_falling_back must be true or false")
    return Relation(
        rel_type=_text(rel.get("rel_type"), "m.relates_to.rel_type", MAX_NAME),
        event_id=_text(rel.get("event_id"), "m.relates_to.event_id", MAX_ID),
        reply_to=_text(reply.get("event_id"), "m.relates_to.m.in_reply_to.event_id", MAX_ID),
        key=_text(rel.get("key"), "m.relates_to.key", MAX_NAME),
        is_falling_back=falling_back,
    )


_MESSAGE_FIELDS = (
    ("body", MAX_TEXT),
    ("formatted_body", MAX_TEXT),
    ("format", MAX_NAME),
    ("msgtype", MAX_NAME),
    ("url", MAX_TEXT),
)


def _check_message(content: dict[str, Any], prefix: str = "") -> None:
    for field, limit in _MESSAGE_FIELDS:
        value = content.get(field)
        if value is not None:  # absent fields (most of them) cost no call
            _text(value, prefix + field, limit)
    _object(content.get("info"), prefix + "info")


def check_event(evt: dict[str, Any]) -> None:
    """Check every field a portal reads from this event; raises :class:`MalformedEvent`.

    The caller has checked ``type``, ``sender``, ``room_id`` and that ``content`` is an
    object."""
    content: dict[str, Any] = evt["content"]
    _text(evt.get("event_id"), "event_id", MAX_ID, optional=False)
    ts = evt.get("origin_server_ts")
    if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)):
        raise MalformedEvent("origin_server_ts must be an integer")
    etype = evt["type"]
    relation(content)
    if etype in ("m.room.message", "m.sticker"):
        _check_message(content)
        new = _object(content.get("m.new_content"), "m.new_content")
        if new is not None:
            _check_message(new, "m.new_content.")
            relation(new)
    elif etype == "m.room.redaction":
        _text(evt.get("redacts"), "redacts", MAX_ID)
        _text(content.get("redacts"), "content.redacts", MAX_ID)
        _text(content.get("reason"), "reason", MAX_TEXT)
    elif etype == "m.room.member":
        _text(evt.get("state_key"), "state_key", MAX_ID)
        _text(content.get("membership"), "membership", MAX_NAME)
        _text(content.get("reason"), "reason", MAX_TEXT)
        _text(content.get("displayname"), "displayname", MAX_TEXT)
    elif etype == "m.room.name":
        _text(content.get("name"), "name", MAX_TEXT)
    elif etype == "m.room.topic":
        _text(content.get("topic"), "topic", MAX_TEXT)
    elif etype == "m.room.avatar":
        _text(content.get("url"), "url", MAX_TEXT)


#: Events whose sender is told when theirs is refused (what they wrote does not arrive).
NOTICE_TYPES = frozenset({"m.room.message", "m.sticker", "m.reaction"})
