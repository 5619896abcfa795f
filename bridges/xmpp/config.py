"""The ``networks.xmpp`` config section: defaults and key-by-key validation.

Example::

    networks:
      xmpp:
        server_host: 127.0.0.1        # where the XMPP server accepts components (XEP-0114)
        server_port: 5347
        component_jid: matrix.example.org
        component_secret: "..."       # the server's component_secret for that JID
        muc_service: conference.example.org   # default service for room names without "@"
        ghost_template: "_xmpp_{jid}"          # XMPP users on Matrix; {jid} is escaped
        alias_template: "_xmpp_{jid}"          # #_xmpp_room=40conference.example.org:domain
        user_jid_template: "{localpart}_{server}"  # Matrix users on XMPP (XEP-0106 escaped)
        avatars: true
        max_body_bytes: 65536          # larger bodies are refused both ways
        reconnect_max_delay: 30        # seconds, the cap of the reconnect backoff
        auth_retry_delay: 60           # seconds between attempts while the secret is refused
        http_upload: true              # share Matrix media through the server's XEP-0363 service
        upload_service: ""             # its JID; "" = discover it on the server's domain
        send_timeout: 120              # seconds a Matrix message waits for the server
        follow_room_access: true       # kept out of a MUC (kick, ban...): out of its room
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, Any] = {
    "server_host": "127.0.0.1",
    "server_port": 5347,
    "component_jid": "",
    "component_secret": "",
    "muc_service": "",
    "ghost_template": "_xmpp_{jid}",
    "alias_template": "_xmpp_{jid}",
    "user_jid_template": "{localpart}_{server}",
    "avatars": True,
    "max_body_bytes": 65536,
    "reconnect_max_delay": 30,
    "send_timeout": 120,
    "auth_retry_delay": 60,
    "http_upload": True,
    "upload_service": "",
    "join_timeout": 15,
    "muc_history": 0,
    #: A Matrix user whose occupant a MUC keeps out (kicked, banned, removed as a non-member,
    #: or refused at the door: members-only, password, full) is removed from its Matrix room,
    #: which would otherwise go on showing them what the room says.
    "follow_room_access": True,
}

_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$"
)
_LOCALPART_CHARS = re.compile(r"^[a-z0-9._=\-/]*$")
KNOWN_KEYS = set(DEFAULTS) | {"enabled"}


def setting(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key) if isinstance(config, Mapping) else None
    return DEFAULTS[key] if value is None else value


def _template_problem(value: Any, placeholder: str) -> str | None:
    if not isinstance(value, str) or value.count(placeholder) != 1:
        return f"must be a string containing {placeholder} once"
    if not _LOCALPART_CHARS.match(value.replace(placeholder, "")):
        return "may only contain a-z 0-9 . _ = - / around the placeholder"
    if not value.replace(placeholder, "").startswith("_"):
        return "should start with _ (the appservice namespace convention)"
    return None


def validate(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in config:
        if key not in KNOWN_KEYS:
            problems.append((str(key), f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})"))

    host = setting(config, "server_host")
    if not isinstance(host, str) or not host:
        problems.append(("server_host", "must be a host name or address"))
    port = setting(config, "server_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems.append(("server_port", f"must be a port number, got {port!r}"))
    jid = setting(config, "component_jid")
    if not isinstance(jid, str) or not jid:
        problems.append(("component_jid", "is required: the JID the server gives this component"))
    elif not _DOMAIN_RE.match(jid):
        problems.append(("component_jid", f"must be a domain like matrix.example.org, got {jid!r}"))
    secret = setting(config, "component_secret")
    if not isinstance(secret, str) or not secret:
        problems.append(("component_secret", "is required: the server's component_secret"))
    muc = setting(config, "muc_service")
    if not isinstance(muc, str) or (muc and not _DOMAIN_RE.match(muc)):
        problems.append(
            ("muc_service", f"must be a domain like conference.example.org, got {muc!r}")
        )
    for key in ("ghost_template", "alias_template"):
        why = _template_problem(setting(config, key), "{jid}")
        if why:
            problems.append((key, why))
    tpl = setting(config, "user_jid_template")
    if not isinstance(tpl, str) or tpl.count("{localpart}") != 1:
        problems.append(("user_jid_template", "must contain {localpart} once"))
    elif tpl.count("{server}") > 1 or re.search(r"\{(?!localpart\}|server\})", tpl):
        problems.append(("user_jid_template", "only {localpart} and {server} may be used"))
    elif "@" in tpl:
        problems.append(("user_jid_template", "is the JID node only: the domain is component_jid"))
    for key in ("avatars", "http_upload", "follow_room_access"):
        if not isinstance(setting(config, key), bool):
            problems.append((key, "must be true or false"))
    upload = setting(config, "upload_service")
    if not isinstance(upload, str) or (upload and not _DOMAIN_RE.match(upload)):
        problems.append(
            ("upload_service", f"must be a domain like upload.example.org, got {upload!r}")
        )
    for key, low in (
        ("max_body_bytes", 1024),
        ("reconnect_max_delay", 1),
        ("auth_retry_delay", 1),
        ("send_timeout", 1),
        ("join_timeout", 1),
        ("muc_history", 0),
    ):
        value = setting(config, key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
            problems.append((key, f"must be a number >= {low}, got {value!r}"))
    return problems
