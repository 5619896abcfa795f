"""Events to the app: the ``event_callback`` payload, delivery over Socket Mode and/or the
Events API, and the stored changes (message, edit, delete, reaction) that emit them.

Events go out for conversations the bot user is a member of, and (the app's user-scope
``message.im`` / ``message.mpim`` subscriptions) for DMs and group DMs of a user who authorised
the app (holds a live user token). As Slack does since 2021, each event goes out once, with
``authorizations`` naming one party it is visible to (the bot when it is one of them):
the full list is ``apps.event.authorizations.list``'s answer."""

from __future__ import annotations

import secrets
import time
from typing import Any

from .models import (
    Conversation,
    Envelope,
    Message,
)
from .wire import _ts_key, _uuid


class EventEmitter:
    """Building and emitting events, and the changes behind message events."""

    # --- events ----------------------------------------------------------------------------

    def event_payload(
        self, team_id: str, event: dict[str, Any], conv: Conversation | None = None
    ) -> dict[str, Any]:
        """The outer ``event_callback`` body, as Socket Mode and the Events API carry it.
        ``authorizations`` names one party ``conv``'s event is visible to (see the module)."""
        team = self.teams[team_id]
        parties = self._visible_to(conv) if conv is not None else [team.bot_user_id]
        first = parties[0] if parties else team.bot_user_id
        context = "4-" + secrets.token_hex(20)
        self.event_authorizations[context] = [
            self._authorization(team_id, uid) for uid in (parties or [first])
        ]
        return {
            "token": self.verification_token,
            "team_id": team_id,
            "context_team_id": team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [self._authorization(team_id, first)],
            "is_ext_shared_channel": False,
            "event_context": context,
        }

    def _authorization(self, team_id: str, user_id: str) -> dict[str, Any]:
        return {
            "enterprise_id": None,
            "team_id": team_id,
            "user_id": user_id,
            "is_bot": user_id == self.teams[team_id].bot_user_id,
            "is_enterprise_install": False,
        }

    def emit_event(
        self, team_id: str, event: dict[str, Any], conv: Conversation | None = None
    ) -> dict[str, Any]:
        """Send ``event`` to the app: an envelope on Socket Mode (now if a socket is up, else on
        the next connection) and, if ``events_url`` is set, a signed HTTP push. Returns the
        outer payload (its ``event_id`` identifies it)."""
        payload = self.event_payload(team_id, event, conv)
        if self.socket_mode:
            env = Envelope(_uuid(), payload)
            self.envelopes.append(env)
            live = [s for s in self._sockets if not s.ws.closed]
            if live:
                env.sent += 1
                live[-1].queue.put_nowait(env.frame())
            if self.ack_timeout is not None:
                self._spawn(self._resend_until_acked(env, self.ack_timeout))
        if self.events_url:
            self._spawn(self._push_and_record(self.events_url, payload))
        self._notify()
        return payload

    def _sees(self, conv: Conversation) -> bool:
        return bool(self._visible_to(conv))

    def _visible_to(self, conv: Conversation) -> list[str]:
        """Who of the app's parties sees ``conv``'s events: the bot user if it is a member,
        then, in DMs and group DMs, the members who authorised the app with a user token."""
        bot = self.teams[conv.team_id].bot_user_id
        parties = [bot] if bot in conv.members else []
        if conv.kind in ("im", "mpim"):
            authorised = {
                t.user_id
                for t in self.tokens.values()
                if t.kind == "user" and t.revoked is None and t.team_id == conv.team_id
            }
            parties += [m for m in conv.members if m in authorised and m != bot]
        return parties

    def _channel_type(self, conv: Conversation) -> str:
        return {"public": "channel", "private": "group", "im": "im", "mpim": "mpim"}[conv.kind]

    def _store(self, msg: Message) -> None:
        msgs = self.messages.setdefault(msg.channel, [])
        msgs.append(msg)
        msgs.sort(key=lambda m: _ts_key(m.ts))

    def _emit_message(self, msg: Message) -> dict[str, Any] | None:
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        event = self.message_json(msg, with_channel=True)
        event["event_ts"] = msg.ts
        event["channel_type"] = self._channel_type(conv)
        if msg.reply_broadcast and msg.thread_ts:
            parent = self._maybe_message(msg.channel, msg.thread_ts)
            if parent is not None:
                event["root"] = self.message_json(parent)
        return self.emit_event(conv.team_id, event, conv)

    def _edit(self, msg: Message, text: str, editor: str) -> dict[str, Any] | None:
        def change(event_ts: str) -> None:
            msg.text = text
            msg.edited = {"user": editor, "ts": event_ts}

        return self._change(msg, change)

    def _change(self, msg: Message, change: Any) -> dict[str, Any] | None:
        """Apply ``change`` (given the event's ts) to a stored message and emit
        ``message_changed``."""
        previous = self.message_json(msg)
        event_ts = self.new_ts()
        change(event_ts)
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        return self.emit_event(
            conv.team_id,
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "channel": msg.channel,
                "channel_type": self._channel_type(conv),
                "ts": event_ts,
                "event_ts": event_ts,
                "message": self.message_json(msg),
                "previous_message": previous,
            },
            conv,
        )

    def _delete(self, msg: Message) -> dict[str, Any] | None:
        if msg.thread_ts == msg.ts and self._replies(msg.channel, msg.ts):
            # A thread root with replies stays, as a tombstone: Slack changes it
            # (``message_changed``) instead of deleting it, and the replies remain.
            def tombstone(_event_ts: str) -> None:
                msg.text = "This message was deleted."
                msg.subtype = "tombstone"
                msg.user = "USLACKBOT"
                msg.files, msg.reactions, msg.edited = [], {}, None
                msg.extra = {"hidden": True}

            return self._change(msg, tombstone)
        previous = self.message_json(msg)
        self.messages[msg.channel].remove(msg)
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        event_ts = self.new_ts()
        return self.emit_event(
            conv.team_id,
            {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": msg.channel,
                "channel_type": self._channel_type(conv),
                "ts": event_ts,
                "deleted_ts": msg.ts,
                "event_ts": event_ts,
                "previous_message": previous,
            },
            conv,
        )

    def _react(self, msg: Message, user: str, name: str, add: bool) -> dict[str, Any] | None:
        users = msg.reactions.setdefault(name, [])
        if add:
            users.append(user)
        else:
            users.remove(user)
            if not users:
                del msg.reactions[name]
        conv = self.conversations[msg.channel]
        if not self._sees(conv):
            return None
        event: dict[str, Any] = {
            "type": "reaction_added" if add else "reaction_removed",
            "user": user,
            "reaction": name,
            "item": {"type": "message", "channel": msg.channel, "ts": msg.ts},
            "event_ts": self.new_ts(),
        }
        if msg.user:
            event["item_user"] = msg.user
        return self.emit_event(conv.team_id, event, conv)
