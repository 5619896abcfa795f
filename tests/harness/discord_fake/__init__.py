"""A fake Discord that speaks Discord's wire protocols, for tests that drive the real discord.py.

``FakeDiscord`` is an aiohttp app on a free loopback port holding its own state (users and
bots, guilds, roles, members, channels, threads, DMs, permission overwrites, messages,
attachments, webhooks) and recording every request. It serves:

- REST v10 at ``fake.api_url`` (``http://127.0.0.1:PORT/api/v10``): the routes discord.py uses
  for what a bridge does (see ``rest.py`` and ``webhooks.py``; ``fake.routes`` lists them),
  JSON answers with ``Content-Type: application/json`` exactly, Discord's error bodies
  (``{"message", "code"}``, 401 ``"401: Unauthorized"``, 404 for unknown routes), multipart
  uploads (``payload_json`` + ``files[n]``), ``X-RateLimit-*`` headers, 429s with ``Via`` and
  ``retry_after``. Auth: ``Bot <token>`` for bots, the bare token for user tokens.
- the gateway at ``fake.gateway_url`` (``ws://127.0.0.1:PORT/gateway``): JSON text frames,
  HELLO / heartbeat ACK / IDENTIFY -> READY + GUILD_CREATEs / RESUME -> replay + RESUMED,
  dispatches to the sessions allowed to see them, intents honoured (no MESSAGE_CONTENT: guild
  messages' content, embeds and attachments empty, except the session's own and those
  mentioning it);
- the cdn at ``fake.cdn_url``: attachments (``send_message(attachments=[(name, bytes, type,
  {width, height, url})])``), registered images and sticker images (``add_sticker_image``).

``fake.point_discord_py()`` (a context manager) sets ``discord.http.Route.BASE``,
``DiscordWebSocket.DEFAULT_GATEWAY`` and ``Asset.BASE`` to the fake and restores them.

Tests build the world with ``add_bot``/``add_user``/``add_guild``/``add_channel``/``add_member``/
``add_role``/``add_dm``/``set_overwrite``/``add_webhook`` and act as Discord users with
``send_message``/``edit_message``/``delete_message(s)``/``add_reaction``/``remove_reaction``/
``typing``/``update_channel``/``update_member``/``update_user``/``create_thread``/
``create_forum_post``/``remove_member``. Faults: ``rate_limit``, ``fail``, ``hold``,
``refuse_token``, ``close_sessions(code)``, ``storm`` / ``clear_storm``, ``send_reconnect``,
``invalidate_session``, ``withhold_heartbeat_ack``, ``echo_before_reply``, ``echo_delay``,
``gateway_paused``, ``gateway_outage()``, ``send_raw_dispatch``, ``send_raw_frame``,
``delete_webhook``, bots without privileged intents (``add_bot(..., privileged_intents=False)``:
4014). Records: ``requests`` / ``requests_to(method, glob)``, ``messages(channel)`` (JSON) and
``message_store`` (models, with a webhook message's ``webhook_name`` / ``webhook_avatar_url``),
``dispatched`` (session id, type, data), ``identify_count``, ``resume_count``,
``gateway_frames``, ``cdn_requests``. Avatars and icons given as bytes are served by the cdn.

Modules: ``models`` (state, records, constants), ``server`` (``FakeDiscord``: routing, auth,
faults, recording, lifecycle), ``workspace`` (set-up, permissions), ``rendering`` (JSON
shapes), ``rest``, ``messages`` and ``webhooks`` (routes), ``gateway`` (sessions,
dispatching, gateway faults), ``cdn`` (downloads), ``actions`` (what users do, the message
store), ``threads`` (threads and forum posts).
"""

from .models import (
    ADMINISTRATOR,
    GUILD_ANNOUNCEMENT,
    GUILD_CATEGORY,
    GUILD_FORUM,
    GUILD_TEXT,
    GUILD_VOICE,
    MANAGE_CHANNELS,
    MANAGE_MESSAGES,
    MANAGE_WEBHOOKS,
    PUBLIC_THREAD,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Recorded,
    Role,
    User,
    Webhook,
    snowflake_time,
)
from .server import ApiError, FakeDiscord

LIMITS = """\
Not modelled: sharding (READY always shard [0, 1]), zlib/etf encodings (text JSON frames only:
discord.py accepts them), presences, voice, interactions and slash commands, stickers beyond
``sticker_items``, polls, components, message search, pins, invites, bans, audit logs,
per-route rate limit buckets beyond the injected 429s (every other answer says 49 left), the
user-account READY shape (a user-token session gets the bot-shaped READY + GUILD_CREATEs plus
``private_channels``; discord.py itself always sends ``Bot <token>`` on REST and calls
``GET /oauth2/applications/@me``, which answers 401 for user tokens: a user-token login through
discord.py needs the connector to send the bare token and skip that call), forum tags, private
thread membership (a private thread is visible like its parent), CHANNEL_DELETE when an
overwrite hides a channel from a connected session (it just stops getting its events), link
unfurl MESSAGE_UPDATEs, message content of a bot's own webhooks' messages without
MESSAGE_CONTENT (kept, as for its own messages)."""

__all__ = [
    "ADMINISTRATOR",
    "GUILD_ANNOUNCEMENT",
    "GUILD_CATEGORY",
    "GUILD_FORUM",
    "GUILD_TEXT",
    "GUILD_VOICE",
    "LIMITS",
    "MANAGE_CHANNELS",
    "MANAGE_MESSAGES",
    "MANAGE_WEBHOOKS",
    "PUBLIC_THREAD",
    "SEND_MESSAGES",
    "VIEW_CHANNEL",
    "ApiError",
    "Attachment",
    "Channel",
    "FakeDiscord",
    "Guild",
    "Member",
    "Message",
    "Recorded",
    "Role",
    "User",
    "Webhook",
    "snowflake_time",
]
