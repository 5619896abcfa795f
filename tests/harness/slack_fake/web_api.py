"""The Web API methods other than files: ``api.test``, ``auth.test``, ``auth.revoke``,
``apps.connections.open``, ``users.*``, ``conversations.*``, ``chat.*``, ``reactions.*``,
``emoji.list``. Each takes the caller's token and the parameters and returns the answer's
fields, or raises ``_ApiError``."""

from __future__ import annotations

import secrets
import time
from typing import Any

from .models import (
    Conversation,
    Message,
    Token,
    _ApiError,
)
from .wire import _bool, _cursor, _ts_key, _uncursor


class WebApiMethods:
    """The Web API method handlers and the checks they share."""

    # -- helpers for the handlers

    def _conv_for(self, token: Token, params: dict[str, Any], key: str = "channel") -> Conversation:
        cid = params.get(key)
        if not cid:
            raise _ApiError("channel_not_found")
        conv = self.conversations.get(str(cid))
        if conv is None or conv.team_id != token.team_id:
            raise _ApiError("channel_not_found")
        if conv.kind != "public" and token.user_id not in conv.members:
            raise _ApiError("channel_not_found")
        return conv

    def _require_member(self, token: Token, conv: Conversation) -> None:
        if token.user_id not in conv.members:
            raise _ApiError("not_in_channel")

    def _find_message(self, channel: str, ts: str) -> Message:
        for msg in self.messages.get(channel, []):
            if msg.ts == ts:
                return msg
        raise _ApiError("message_not_found")

    @staticmethod
    def _limit(params: dict[str, Any], default: int, maximum: int = 1000) -> int:
        try:
            limit = int(params.get("limit") or default)
        except ValueError:
            raise _ApiError("invalid_limit") from None
        return default if limit <= 0 else min(limit, maximum)

    def _page_by_offset(
        self, items: list[Any], params: dict[str, Any], default: int
    ) -> tuple[list[Any], str]:
        start = 0
        if params.get("cursor"):
            try:
                start = int(_uncursor(str(params["cursor"]), "offset:"))
            except ValueError:
                raise _ApiError("invalid_cursor") from None
        limit = self._limit(params, default)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return page, _cursor(f"offset:{start + limit}") if more else ""

    # -- methods

    def _api_test(self, token: Token | None, params: dict[str, Any]) -> dict[str, Any]:
        return {"args": {k: v for k, v in params.items() if k != "token"}}

    def _auth_test(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        team = self.teams[token.team_id]
        user = self.users[token.user_id]
        d = {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": user.name,
            "team_id": team.id,
            "user_id": user.id,
            "is_enterprise_install": False,
        }
        if token.kind == "bot":
            d["bot_id"] = user.bot_id
        return d

    def _auth_revoke(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        """The token stops working (``test=true``: only says it would)."""
        if _bool(params.get("test", False)):
            return {"revoked": False}
        token.revoked = "token_revoked"
        return {"revoked": True}

    def _connections_open(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        host = self.url.removeprefix("http://")
        return {"url": f"ws://{host}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _team_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        """The token's workspace (another ``team`` than the token's: ``team_not_found``, as
        Slack answers for a team the token cannot see)."""
        team_id = str(params.get("team") or token.team_id)
        team = self.teams.get(team_id)
        if team is None or team_id != token.team_id:
            raise _ApiError("team_not_found")
        base = f"{self.url}/team-icons/{team.id}/{team.icon_hash}"
        icon: dict[str, Any] = {
            f"image_{s}": f"{base}_{s}.png" for s in (34, 44, 68, 88, 102, 132, 230)
        }
        if not team.icon:
            icon["image_default"] = True
        return {
            "team": {
                "id": team.id,
                "name": team.name,
                "url": f"https://{team.domain}.slack.com/",
                "domain": team.domain,
                "email_domain": "",
                "icon": icon,
                "avatar_base_url": "https://ca.slack-edge.com/",
                "is_verified": False,
            }
        }

    def _users_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user", "")))
        if user is None or user.team_id != token.team_id:
            raise _ApiError("user_not_found")
        return {"user": self.user_json(user)}

    def _users_list(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in self.users.values() if u.team_id == token.team_id]
        page, nxt = self._page_by_offset(users, params, default=len(users) or 1)
        return {
            "members": [self.user_json(u) for u in page],
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": nxt},
        }

    def _users_lookup_by_email(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").strip().lower()
        for user in self.users.values():
            if user.team_id == token.team_id and user.email and user.email.lower() == email:
                return {"user": self.user_json(user)}
        raise _ApiError("users_not_found")

    def _event_authorizations(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        found = self.event_authorizations.get(str(params.get("event_context") or ""))
        if found is None:
            raise _ApiError("invalid_event_context")
        page, nxt = self._page_by_offset(found, params, default=100)
        return {"authorizations": page, "response_metadata": {"next_cursor": nxt}}

    def _conv_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        return {"channel": self.conversation_json(conv, token.user_id)}

    def _conv_list(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        types = str(params.get("types") or "public_channel").split(",")
        kinds = {"public_channel": "public", "private_channel": "private", "im": "im"}
        wanted = {kinds.get(t.strip(), t.strip()) for t in types}
        exclude_archived = _bool(params.get("exclude_archived", False))
        convs = [
            c
            for c in self.conversations.values()
            if c.team_id == token.team_id
            and c.kind in wanted
            and (c.kind == "public" or token.user_id in c.members)
            and not (exclude_archived and c.is_archived)
        ]
        page, nxt = self._page_by_offset(convs, params, default=100)
        return {
            "channels": [self.conversation_json(c, token.user_id) for c in page],
            "response_metadata": {"next_cursor": nxt},
        }

    def _conv_members(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        page, nxt = self._page_by_offset(list(conv.members), params, default=100)
        return {"members": page, "response_metadata": {"next_cursor": nxt}}

    def _window(self, msgs: list[Message], params: dict[str, Any]) -> list[Message]:
        inclusive = _bool(params.get("inclusive", False))
        oldest = _ts_key(str(params["oldest"])) if params.get("oldest") else None
        latest = _ts_key(str(params["latest"])) if params.get("latest") else None

        def inside(m: Message) -> bool:
            k = _ts_key(m.ts)
            if oldest is not None and (k < oldest or (k == oldest and not inclusive)):
                return False
            if latest is not None and (k > latest or (k == latest and not inclusive)):
                return False
            return True

        return [m for m in msgs if inside(m)]

    def _conv_history(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        self._require_member(token, conv)
        msgs = [
            m
            for m in self.messages[conv.id]
            if m.thread_ts is None or m.thread_ts == m.ts or m.reply_broadcast
        ]
        msgs = list(reversed(self._window(msgs, params)))  # newest first
        if params.get("cursor"):
            start = _ts_key(_uncursor(str(params["cursor"]), "next_ts:"))
            msgs = [m for m in msgs if _ts_key(m.ts) <= start]
        limit = self._limit(params, 100, 999)
        page, rest = msgs[:limit], msgs[limit:]
        return {
            "messages": [self.message_json(m) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
            "response_metadata": {"next_cursor": _cursor(f"next_ts:{rest[0].ts}") if rest else ""},
        }

    def _conv_replies(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        self._require_member(token, conv)
        ts = str(params.get("ts") or "")
        if not ts:
            raise _ApiError("invalid_arguments")
        parent = self._maybe_message(conv.id, ts)
        if parent is None:
            raise _ApiError("thread_not_found")
        root = parent.thread_ts or parent.ts
        msgs = [m for m in self.messages[conv.id] if m.ts == root or m.thread_ts == root]
        msgs = self._window(msgs, params)
        if params.get("cursor"):
            start = _ts_key(_uncursor(str(params["cursor"]), "next_ts:"))
            msgs = [m for m in msgs if _ts_key(m.ts) >= start]
        limit = self._limit(params, 1000)
        page, rest = msgs[:limit], msgs[limit:]
        return {
            "messages": [self.message_json(m) for m in page],
            "has_more": bool(rest),
            "response_metadata": {"next_cursor": _cursor(f"next_ts:{rest[0].ts}") if rest else ""},
        }

    def _conv_open(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            conv = self._conv_for(token, params)
            return {"no_op": True, "already_open": True, "channel": {"id": conv.id}}
        users = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise _ApiError("users_list_not_supplied")
        for uid in users:
            u = self.users.get(uid)
            if u is None or u.team_id != token.team_id:
                raise _ApiError("user_not_found")
        wanted = set(users) | {token.user_id}
        kind = "im" if len(wanted) <= 2 else "mpim"
        for conv in self.conversations.values():
            if conv.kind == kind and conv.team_id == token.team_id and set(conv.members) == wanted:
                full = self.conversation_json(conv, token.user_id)
                ch = full if _bool(params.get("return_im", False)) else {"id": conv.id}
                return {"no_op": True, "already_open": True, "channel": ch}
        conv = self.add_conversation(
            token.team_id, kind=kind, members=[token.user_id, *users], with_bot=False
        )
        full = self.conversation_json(conv, token.user_id)
        return {"channel": full if _bool(params.get("return_im", False)) else {"id": conv.id}}

    def _post_message(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        if conv.is_archived:
            raise _ApiError("is_archived")
        self._require_member(token, conv)
        text = str(params.get("text") or "")
        if not text and not params.get("blocks") and not params.get("attachments"):
            raise _ApiError("no_text")
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        if thread_ts is not None:
            parent = self._maybe_message(conv.id, thread_ts)
            if parent is None:
                raise _ApiError("thread_not_found")  # Slack posts it unthreaded; stricter here
            thread_ts = parent.thread_ts or parent.ts
            parent.thread_ts = thread_ts
        user = self.users[token.user_id]
        msg = Message(conv.id, self.new_ts(), text, user=user.id, thread_ts=thread_ts)
        if thread_ts and _bool(params.get("reply_broadcast", False)):
            msg.reply_broadcast = True
            msg.subtype = "thread_broadcast"
        if token.kind == "bot":
            msg.bot_id = user.bot_id
            username = params.get("username")
            icon_url = params.get("icon_url")
            if username or icon_url:
                # chat:write.customize: shown as a bot message under the given name
                msg.subtype = msg.subtype or "bot_message"
                msg.username = str(username) if username else None
                msg.icon_url = str(icon_url) if icon_url else None
        self._store(msg)
        self._emit_message(msg)
        return {"channel": conv.id, "ts": msg.ts, "message": self.message_json(msg)}

    def _me_message(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        """``chat.meMessage``: a ``me_message`` (no thread, no custom name)."""
        conv = self._conv_for(token, params)
        if conv.is_archived:
            raise _ApiError("is_archived")
        self._require_member(token, conv)
        text = str(params.get("text") or "")
        if not text:
            raise _ApiError("no_text")
        user = self.users[token.user_id]
        msg = Message(conv.id, self.new_ts(), text, user=user.id, subtype="me_message")
        if token.kind == "bot":
            msg.bot_id = user.bot_id
        self._store(msg)
        self._emit_message(msg)
        return {"channel": conv.id, "ts": msg.ts}

    def _chat_update(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        msg = self._find_message(conv.id, str(params.get("ts") or ""))
        if msg.user != token.user_id:
            raise _ApiError("cant_update_message")
        text = str(params.get("text") or "")
        if not text and not params.get("blocks"):
            raise _ApiError("no_text")
        self._edit(msg, text, token.user_id)
        return {
            "channel": conv.id,
            "ts": msg.ts,
            "text": msg.text,
            "message": self.message_json(msg),
        }

    def _chat_delete(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        conv = self._conv_for(token, params)
        msg = self._find_message(conv.id, str(params.get("ts") or ""))
        if msg.user != token.user_id:
            raise _ApiError("cant_delete_message")
        self._delete(msg)
        return {"channel": conv.id, "ts": msg.ts}

    def _reaction_target(self, token: Token, params: dict[str, Any]) -> tuple[Message, str]:
        conv = self._conv_for(token, params)
        msg = self._find_message(conv.id, str(params.get("timestamp") or ""))
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise _ApiError("invalid_name")
        return msg, name

    def _reactions_add(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction_target(token, params)
        if token.user_id in msg.reactions.get(name, []):
            raise _ApiError("already_reacted")
        self._react(msg, token.user_id, name, True)
        return {}

    def _reactions_remove(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction_target(token, params)
        if token.user_id not in msg.reactions.get(name, []):
            raise _ApiError("no_reaction")
        self._react(msg, token.user_id, name, False)
        return {}

    def _emoji_list(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        return {"emoji": dict(self.emoji.get(token.team_id, {})), "cache_ts": f"{time.time():.6f}"}
