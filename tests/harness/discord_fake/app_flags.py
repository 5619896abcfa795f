"""A bot application's privileged intents as Discord shows them: which ones are enabled in the
Developer Portal decides what IDENTIFY may ask for (else close 4014) and the application's
``flags`` (``GET /oauth2/applications/@me``, READY's ``application``)."""

from __future__ import annotations

from .models import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_PRESENCES,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    User,
)

#: Application flags of the enabled privileged intents: the *_LIMITED ones, which are the
#: toggles of a bot in under 100 servers (unverified: a self-hosted bridge's bot); a verified
#: bot has GATEWAY_PRESENCE (1 << 12), GATEWAY_GUILD_MEMBERS (1 << 14) and
#: GATEWAY_MESSAGE_CONTENT (1 << 18) instead.
GATEWAY_PRESENCE = 1 << 13
GATEWAY_GUILD_MEMBERS = 1 << 15
GATEWAY_MESSAGE_CONTENT = 1 << 19
_FLAGS = {
    INTENT_GUILD_PRESENCES: GATEWAY_PRESENCE,
    INTENT_GUILD_MEMBERS: GATEWAY_GUILD_MEMBERS,
    INTENT_MESSAGE_CONTENT: GATEWAY_MESSAGE_CONTENT,
}


def enabled_intents(user: User) -> int:
    """The privileged intents ``user``'s application has enabled (``privileged_intents``
    False: none; ``disabled_intents``: some of them turned off)."""
    if not user.privileged_intents:
        return 0
    return PRIVILEGED_INTENTS & ~user.disabled_intents


def application_flags(user: User) -> int:
    enabled = enabled_intents(user)
    return sum(flag for intent, flag in _FLAGS.items() if enabled & intent)


def intents_allowed(user: User, intents: int) -> bool:
    return not (intents & PRIVILEGED_INTENTS & ~enabled_intents(user))
