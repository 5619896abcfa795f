"""The ``networks.slack`` config section: defaults and key-by-key validation.

Example::

    networks:
      slack:
        api_url: ""                # "" = https://slack.com/api/ (a test fake or proxy otherwise)
        ghost_template: "_slack_{id}"   # Slack users on Matrix; {id} is team-user, lower case
        rate_limit_retries: 5      # 429s answered per call, each after its Retry-After
        request_timeout: 30        # seconds per Web API call
        member_list_limit: 200     # channels up to this size have their members synced
                                   # (their list, then joins and leaves); larger ones get
                                   # ghosts as people speak, and no join events
        max_file_size: 20971520    # bytes; larger files are not copied (a notice with the
                                   # link instead; media.max_size caps Slack -> Matrix too)
        file_hosts: [files.slack.com]   # hosts url_private may point to (the api_url's host is
                                   # always allowed); the Slack token goes to no other
        events_api:                # the Events API over HTTP, for apps without Socket Mode
          enabled: false           # (an app login then gives its signing secret instead of an
          hostname: 127.0.0.1      # app-level token); Slack's Request URL points here
          port: 29340
          path: /slack/events
          max_body: 1048576        # bytes; larger pushes are refused (413)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

DEFAULTS: dict[str, Any] = {
    "api_url": "",
    "ghost_template": "_slack_{id}",
    "rate_limit_retries": 5,
    "request_timeout": 30,
    "member_list_limit": 200,
    "max_file_size": 20 * 1024 * 1024,
    "file_hosts": ["files.slack.com"],
    "events_api": {},
}

#: The ``events_api`` sub-section's defaults (off: Socket Mode needs no listener).
EVENTS_API_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "hostname": "127.0.0.1",
    "port": 29340,
    "path": "/slack/events",
    "max_body": 1024 * 1024,
}

KNOWN_KEYS = set(DEFAULTS) | {"enabled"}


def setting(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


def events_api(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``events_api`` settings, defaults filled in."""
    given = config.get("events_api")
    return {**EVENTS_API_DEFAULTS, **(given if isinstance(given, Mapping) else {})}


def _validate_events_api(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    given = config.get("events_api")
    if given is None:
        return []
    if not isinstance(given, Mapping):
        return [("events_api", "must be a mapping")]
    problems = [(f"events_api.{k}", "unknown key") for k in given if k not in EVENTS_API_DEFAULTS]
    ev = events_api(config)
    if not isinstance(ev["enabled"], bool):
        problems.append(("events_api.enabled", "must be true or false"))
    port = ev["port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        problems.append(("events_api.port", "must be a port number"))
    if not isinstance(ev["hostname"], str) or not ev["hostname"]:
        problems.append(("events_api.hostname", "must be a host name or address"))
    path = ev["path"]
    if not isinstance(path, str) or not path.startswith("/"):
        problems.append(("events_api.path", "must start with /"))
    size = ev["max_body"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1024:
        problems.append(("events_api.max_body", "must be a number of bytes >= 1024"))
    return problems


def validate(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in config:
        if key not in KNOWN_KEYS:
            problems.append((key, "unknown key"))
    api_url = str(setting(config, "api_url"))
    if api_url:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(("api_url", "must be an http(s) URL"))
        elif not api_url.endswith("/"):
            problems.append(("api_url", "must end with /"))
    template = str(setting(config, "ghost_template"))
    if template.count("{id}") != 1:
        problems.append(("ghost_template", "must contain {id} once"))
    hosts = setting(config, "file_hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        problems.append(("file_hosts", "must be a list of host names (host or host:port)"))
    for key in ("rate_limit_retries", "request_timeout", "member_list_limit", "max_file_size"):
        value = setting(config, key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            problems.append((key, "must be a number >= 0"))
    problems += _validate_events_api(config)
    return problems
