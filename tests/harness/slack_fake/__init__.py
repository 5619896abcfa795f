"""A fake Slack that speaks Slack's wire protocols, for tests that drive the real slack-sdk.

``FakeSlack`` is an aiohttp app on a free loopback port that holds its own state (teams, users,
conversations, messages, files, custom emoji) and records every request it gets. It serves:

- the Web API at ``{fake.url}/api/{method}`` (point ``AsyncWebClient(base_url=fake.api_url)``
  at it): parameters from the query string, a form body or a JSON body, the token from
  ``Authorization: Bearer`` or a ``token`` parameter; answers ``{"ok": true, ...}`` or
  ``{"ok": false, "error": "..."}`` with HTTP 200, and ``429`` with ``Retry-After`` when rate
  limited, as Slack does;
- the Socket Mode websocket that ``apps.connections.open`` hands out (``ws://127.0.0.1:PORT/link/
  ?ticket=...``; one use per ticket; needs the ``xapp-`` token): ``hello`` on connect,
  ``events_api`` envelopes, acks recorded by ``envelope_id``, ``disconnect`` frames on demand,
  and unacknowledged envelopes sent again on the next connection with ``retry_attempt``
  incremented and ``retry_reason`` ``"timeout"``;
- files upload v2: ``files.getUploadURLExternal`` hands out an upload URL on the fake, the
  client POSTs the bytes there, ``files.completeUploadExternal`` shares them (a ``file_share``
  message); ``url_private`` downloads need a bearer token of the file's team (without one the
  fake redirects to an HTML sign-in page with a 200, as Slack does: a client that does not check
  the content type stores HTML as the file);
- public avatar and custom emoji images.

It also pushes Events API requests over HTTP to a URL (signed with the signing secret:
``v0=HMAC-SHA256("v0:{ts}:{body}")``), including ``url_verification`` and deliberately stale or
badly signed pushes.

Tests act as Slack users through methods that store the change and emit the event Slack would
send (``post_user_message``, ``edit_message``, ``delete_message``, ``add_reaction``,
``update_user``, ``join``, ``leave``, ``rename`` ...). Events go to the app for conversations
its bot user is a member of (``user_change`` always), and for DMs and group DMs of users who
authorised the app (a live user token: the user-scope ``message.im``/``message.mpim``
subscriptions), as Slack's subscriptions do: once per event, ``authorizations`` naming one party
that sees it (the bot first), all of them from ``apps.event.authorizations.list``.

Faults: ``rate_limit(method)``, ``fail(method, error)``, ``delay(method, seconds)``,
``disconnect(method)`` (the HTTP connection closed with no answer), ``revoke(token, error)``
(every later call with that token fails), ``drop_sockets()`` (TCP closed without a close
frame), ``request_refresh()`` (a ``disconnect`` frame), ``refuse_sockets(n)`` (handshakes
fail, their one-use URLs spent), ``send_frame(frame)`` (any frame, malformed ones too),
``ack_timeout`` (unacknowledged envelopes resent on the live socket), ``push_retry_delays``
(failed HTTP pushes retried with ``X-Slack-Retry-Num``).

What this does not model is listed in ``LIMITS`` below.

The package is split by role; ``FakeSlack`` (server.py) is built from one mixin per role:

- ``models``: the state and record dataclasses; ``wire``: ts, cursor, uuid, mimetype helpers;
- ``server``: ``FakeSlack`` itself: state, routes, lifecycle, faults, recording and waiting,
  the Web API dispatch;
- ``workspace``: ids and the ``add_*`` / ``*_token`` set-up methods;
- ``rendering``: users, conversations, files and messages as the API shows them;
- ``web_api``: the Web API methods except ``files.*``; ``files``: upload v2, ``files.info``,
  downloads, avatars and emoji images;
- ``socket_mode``: the websocket, envelopes, acks and redelivery, dropped sockets, refreshes;
- ``events``: event payloads, their delivery, and the stored changes that emit them;
- ``events_api``: signed HTTP pushes, stale or badly signed ones, ``url_verification``;
- ``actions``: what tests do as Slack users.
"""

# the state classes stay importable from here, as from the single module this package was
from .models import (  # noqa: F401
    Conversation,
    Envelope,
    FileObj,
    Message,
    PushResult,
    Recorded,
    SlackApiFault,
    Team,
    Token,
    User,
)
from .server import FakeSlack

__all__ = ["FakeSlack", "SlackApiFault", "LIMITS"]

LIMITS = """
Not modelled: OAuth scopes (every token may call every method; only the methods of
``conversation_admin.py`` check them, against a set a test gave with ``restrict_scopes``),
Enterprise Grid, shared channels, blocks / rich_text (messages carry ``text`` only), message
tombstones (a deleted thread parent disappears with its replies still stored), typing, read
markers other than the caller's own (``conversations.mark`` keeps them; no ``channel_marked``
goes to apps, as on Slack), presence, pins, bookmarks, Slack's real redelivery timings
(``ack_timeout`` and ``push_retry_delays`` are set by the test), the ``too_many_websockets``
limit and delivery spread over several connections (the newest live connection gets every
envelope), per-method rate tiers (limits are injected, never computed), ``interactive`` /
``slash_commands`` envelopes, enterprise ``authorizations``, ``files.list`` and file comments,
the ``message_changed`` Slack may send for a thread parent when a reply arrives, the delay
before a ``file_share`` appears, and user-scope subscriptions other than
``message.im``/``message.mpim`` (events of channels the bot is not in never go out, whoever
authorised the app).
Shapes were written from Slack's documentation and slack-sdk's own fixtures, not captured
from live Slack.
"""
