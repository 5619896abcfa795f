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
}

KNOWN_KEYS = set(DEFAULTS) | {"enabled"}


def setting(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


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
    return problems
