"""The Web API methods that change a conversation rather than post in it:
``conversations.rename``, ``conversations.setTopic``, ``conversations.setPurpose`` and
``conversations.mark``.

Each does what Slack does and emits what Slack emits: a rename posts the ``channel_name``
message and sends ``channel_rename`` (``group_rename``), a topic or purpose posts the
``channel_topic`` / ``channel_purpose`` message (through :class:`.actions.UserActions`, as a
change made in Slack's own app). ``conversations.mark`` moves the caller's read marker and
emits nothing to apps (Slack's ``channel_marked`` goes to the user's own clients only).

Scopes: a token holds every scope unless the test gave it a set (:meth:`restrict_scopes`);
these methods need the write scope of the conversation's kind and answer ``missing_scope``
(with ``needed`` and ``provided``) as Slack does.
"""

from __future__ import annotations

import re
from typing import Any

from .models import Conversation, Token, _ApiError

#: Slack's rules for a channel name: lower case letters, digits, ``-`` and ``_``; 80 at most.
NAME_MAX = 80
TOPIC_MAX = 250
_NAME_RE = re.compile(r"^[a-z0-9_-]+$")

#: The scope these methods need, by conversation kind (a bot token: ``channels:manage`` for
#: a public channel).
_WRITE_SCOPES = {
    "public": "channels:write",
    "private": "groups:write",
    "im": "im:write",
    "mpim": "mpim:write",
}


class ConversationAdmin:
    """The conversation-changing method handlers, and the scope check they share."""

    def restrict_scopes(self, token_value: str, scopes: set[str]) -> None:
        """``token_value`` now holds only ``scopes`` (the default: every scope)."""
        self.tokens[token_value].scopes = set(scopes)

    def read_mark(self, user: str, channel: str) -> str | None:
        """The ts up to which ``user`` read ``channel`` (``conversations.mark``), or None."""
        return self.read_marks.get((user, channel))

    def _need_scope(self, token: Token, conv: Conversation) -> None:
        needed = _WRITE_SCOPES[conv.kind]
        if token.kind == "bot" and conv.kind == "public":
            needed = "channels:manage"
        if token.scopes is not None and needed not in token.scopes:
            raise _ApiError("missing_scope", needed=needed, provided=",".join(sorted(token.scopes)))

    def _admin_target(self, token: Token, params: dict[str, Any]) -> Any:
        conv = self._conv_for(token, params)
        self._need_scope(token, conv)
        if conv.is_archived:
            raise _ApiError("is_archived")
        self._require_member(token, conv)
        return conv

    def _conv_rename(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._admin_target(token, params)
        if conv.kind in ("im", "mpim"):
            raise _ApiError("method_not_supported_for_channel_type")
        name = str(params.get("name") or "")
        if not name:
            raise _ApiError("invalid_name_required")
        if len(name) > NAME_MAX:
            raise _ApiError("invalid_name_maxlength")
        if not _NAME_RE.match(name):
            raise _ApiError("invalid_name_specials")
        if not re.search(r"[a-z0-9]", name):
            raise _ApiError("invalid_name_punctuation")
        for other in self.conversations.values():
            if other is not conv and other.team_id == conv.team_id and other.name == name:
                raise _ApiError("name_taken")
        if name != conv.name:
            self.rename(conv.id, name, user=token.user_id)
        return {"channel": self.conversation_json(conv, token.user_id)}

    def _set_text(self, token: Token, params: dict[str, Any], key: str) -> tuple[Any, str]:
        conv = self._admin_target(token, params)
        value = str(params.get(key) or "")
        if len(value) > TOPIC_MAX:
            raise _ApiError("too_long")
        return conv, value

    def _conv_set_topic(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv, topic = self._set_text(token, params, "topic")
        if topic != conv.topic:
            self.set_topic(conv.id, token.user_id, topic)
        return {"channel": self.conversation_json(conv, token.user_id)}

    def _conv_set_purpose(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv, purpose = self._set_text(token, params, "purpose")
        if purpose != conv.purpose:
            self.set_purpose(conv.id, token.user_id, purpose)
        return {"channel": self.conversation_json(conv, token.user_id)}

    def _conv_mark(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        self._need_scope(token, conv)
        self._require_member(token, conv)
        ts = str(params.get("ts") or "")
        if not re.match(r"^\d+\.\d+$", ts):
            raise _ApiError("invalid_timestamp")
        self.read_marks[(token.user_id, conv.id)] = ts
        return {}
