"""What an Events API payload must look like before anything reads it.

Payloads come from Slack over Socket Mode or HTTP, but a bridge must not trust them blindly:
a malformed one (not an object, no ``event``, an id that is not a Slack id, a ``ts`` that is
not a timestamp, text that is not a string) is named here, logged and skipped, instead of
crashing a handler, being retried forever, or turning into a strange ghost or portal id.
The checks are of shapes only; what an event means is the handlers' business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .ids import is_slack_id

_TS_RE = re.compile(r"^\d{1,12}\.\d{1,9}$")
_EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

#: Fields that, when they are strings, must be Slack ids (``channel`` is an object in
#: ``channel_created``, ``user`` one in ``user_change``: those are left to their handlers).
ID_FIELDS = ("user", "channel", "team", "bot_id", "item_user", "inviter")
TS_FIELDS = ("ts", "thread_ts", "event_ts", "deleted_ts")
#: Events whose ``channel`` and ``ts`` must be there (and strings) to mean anything.
NEEDS_CHANNEL = frozenset({"message"})


def _fields_problem(obj: Mapping[str, Any], where: str) -> str | None:
    for key in ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str):
            if value and not is_slack_id(value):
                return f"{where}.{key} is not a Slack id"
        elif value is not None and not isinstance(value, dict):
            return f"{where}.{key} has the wrong type"
    for key in TS_FIELDS:
        value = obj.get(key)
        if value is not None and not (isinstance(value, str) and _TS_RE.match(value)):
            return f"{where}.{key} is not a Slack timestamp"
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        return f"{where}.text is not a string"
    for key in ("files", "attachments", "blocks"):
        value = obj.get(key)
        if value is not None and not isinstance(value, list):
            return f"{where}.{key} is not a list"
    return None


def payload_problem(payload: Any) -> str | None:
    """Why ``payload`` (an ``event_callback``) cannot be handled, or None if it can."""
    if not isinstance(payload, dict):
        return "the payload is not an object"
    kind = payload.get("type")
    if kind is not None and kind != "event_callback":
        return f"payload type {kind!r} is not an event"
    event_id = payload.get("event_id")
    if event_id is not None and not (isinstance(event_id, str) and _EVENT_ID_RE.match(event_id)):
        return "event_id is not an event id"
    team = payload.get("team_id")
    if team is not None and not (isinstance(team, str) and is_slack_id(team)):
        return "team_id is not a Slack id"
    event = payload.get("event")
    if not isinstance(event, dict):
        return "no event object"
    etype = event.get("type")
    if not isinstance(etype, str) or not etype:
        return "the event has no type"
    subtype = event.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        return "event.subtype is not a string"
    problem = _fields_problem(event, "event")
    if problem:
        return problem
    if etype in NEEDS_CHANNEL and not (
        isinstance(event.get("channel"), str) and isinstance(event.get("ts"), str)
    ):
        return f"a {etype} event without channel or ts"
    for key in ("message", "previous_message", "root", "item"):
        inner = event.get(key)
        if inner is None:
            continue
        if not isinstance(inner, dict):
            return f"event.{key} is not an object"
        problem = _fields_problem(inner, f"event.{key}")
        if problem:
            return problem
    return None
