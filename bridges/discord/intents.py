"""Which privileged intents a bot may ask for, and what to tell its admin when it may not.

Discord closes a session that asks for a privileged intent its application has not enabled
(close 4014), and a bot without the Message Content intent receives guild messages with
empty content, attachments and embeds (except those mentioning it). The application's flags
(``GET /oauth2/applications/@me``, read by discord.py's login) say which intents are enabled:
the bridge asks only for those, and says what is missing (at start, in ``ping``, and in a
portal whose messages arrive empty), rather than looping on 4014 or bridging empty messages.
"""

from __future__ import annotations

from typing import Any

import discord

from .gateway import INTENTS

#: discord.Intents attribute -> (its name in the Developer Portal, the application flags that
#: say it is enabled: the plain one, and the *_limited one of bots under 100 guilds).
PRIVILEGED = {
    "message_content": (
        "Message Content Intent",
        ("gateway_message_content", "gateway_message_content_limited"),
    ),
    "members": (
        "Server Members Intent",
        ("gateway_guild_members", "gateway_guild_members_limited"),
    ),
}

WHERE = "Discord Developer Portal > your application > Bot > Privileged Gateway Intents"


def intents_for(flags: Any) -> tuple[discord.Intents, list[str]]:
    """The intents to IDENTIFY with for an application with ``flags``
    (:class:`discord.ApplicationFlags`, None: unknown, ask for all), and the names of the
    privileged ones left out."""
    intents = discord.Intents(**dict(INTENTS))
    missing: list[str] = []
    if flags is None:
        return intents, missing
    for attr, (name, flag_names) in PRIVILEGED.items():
        if getattr(INTENTS, attr) and not any(getattr(flags, f, False) for f in flag_names):
            setattr(intents, attr, False)
            missing.append(name)
    return intents, missing


def missing_notice(missing: list[str]) -> str:
    """What the admin reads when the bot runs without some privileged intents."""
    what = " and the ".join(missing)
    text = f"the bot's application has not enabled the {what}"
    if "Message Content Intent" in missing:
        text += (
            ": Discord sends its guild messages without their text, attachments and embeds, "
            "so they cannot be bridged"
        )
    return f"{text}. Enable it in the {WHERE}, then restart the bridge or log in again."


def refused_notice(missing: list[str]) -> str:
    """Close 4014: Discord refused the intents asked for."""
    names = missing or [name for name, _ in PRIVILEGED.values()]
    return (
        f"Discord refused the gateway intents (close 4014): enable the {' and the '.join(names)} "
        f"in the {WHERE}, then log in again. Not reconnecting until then."
    )


def looks_emptied(message: discord.Message, own_id: int) -> bool:
    """A guild message as a bot without the Message Content intent receives it: nothing in
    it (no text, attachments, embeds, stickers), not a system message, not mentioning the
    bot (those keep their content)."""
    if message.guild is None or message.type not in (
        discord.MessageType.default,
        discord.MessageType.reply,
    ):
        return False
    if message.content or message.attachments or message.embeds or message.stickers:
        return False
    if getattr(message, "poll", None) is not None:
        return False
    return not any(u.id == own_id for u in message.mentions)
