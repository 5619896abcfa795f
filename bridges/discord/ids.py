"""How Discord ids become bridgekit ids, and back.

Discord ids are snowflakes (decimal strings), unique across Discord, so they are used as they
are:

* a Discord user -> ghost remote id ``<user id>`` (``@_discord_<user id>:example.org``);
* a channel -> portal key id ``<channel id>``: receiver ``""`` for guild channels (one portal
  per channel, whoever is logged in), the personal login's id for DMs and group DMs;
* a thread or forum post -> an ``m.thread`` in its parent channel's portal, rooted at the
  thread's starter message (whose id is the thread's id);
* a guild -> the space ``guild-<guild id>``;
* a message -> its id; the parts of a message: ``""`` the text, ``att:<id>`` per attachment,
  ``embed:<n>`` per embed, ``sticker:<id>`` per sticker.
"""

from __future__ import annotations

import re

from bridgekit.contract.events import PortalKey, RemoteChatID, RemoteUserID

_SNOWFLAKE_RE = re.compile(r"^[0-9]{1,20}$")


def is_snowflake(value: object) -> bool:
    return isinstance(value, str) and bool(_SNOWFLAKE_RE.match(value))


def user_rid(user_id: int | str) -> RemoteUserID:
    return RemoteUserID(str(user_id))


def portal_key(channel_id: int | str, receiver: str = "") -> PortalKey:
    return PortalKey(RemoteChatID(str(channel_id)), receiver)


def space_id(guild_id: int | str) -> str:
    return f"guild-{guild_id}"


def attachment_part(attachment_id: int | str) -> str:
    return f"att:{attachment_id}"


def embed_part(index: int) -> str:
    return f"embed:{index}"


def sticker_part(sticker_id: int | str) -> str:
    return f"sticker:{sticker_id}"
