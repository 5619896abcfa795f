"""The ``networks.discord`` config section: defaults and key-by-key validation.

Example::

    networks:
      discord:
        api_url: ""            # "" = https://discord.com/api/v10 (a test fake or proxy otherwise)
        gateway_url: ""        # "" = wss://gateway.discord.gg/
        cdn_url: ""            # "" = https://cdn.discordapp.com: where avatars, icons,
                               # custom emoji and stickers are (discord.py's Asset.BASE)
        ghost_template: "_discord_{id}"   # Discord users on Matrix; {id} is the user id
        media_hosts: [cdn.discordapp.com, media.discordapp.net]
                               # hosts attachments, avatars and emoji are fetched from; the
                               # api_url's host is always allowed; nothing else is fetched
        guild_portals: on_demand   # on_demand: a channel's room is made when it is first
                               # active; all: `discord bridge-guild` makes every room at once
        reconnect:             # the bridge's own backoff around discord.py's reconnects
          base: 5              # seconds before IDENTIFYing again after a short session (doubling)
          max_delay: 300
          failures: 5          # short sessions within `window` seconds that stop the login
          window: 600
          pause: 1800          # for this long (doubling while it keeps failing, to max_pause)
          max_pause: 21600
          stable: 60           # seconds a session must last to count as healthy
        max_file_size: 10485760   # bytes a Matrix file may have to be uploaded to Discord
                               # (the server's limit: 10 MiB without boosts); a larger one is
                               # sent as a link
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from bridgekit.contract.file_checks import allowed_file_url, allowed_hosts

from . import reconnect

#: Discord's own endpoints: what discord.py talks to when the config names none.
DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"
DISCORD_CDN = "https://cdn.discordapp.com"

DEFAULTS: dict[str, Any] = {
    "api_url": "",
    "gateway_url": "",
    "cdn_url": "",
    "ghost_template": "_discord_{id}",
    "media_hosts": ["cdn.discordapp.com", "media.discordapp.net"],
    "guild_portals": "on_demand",
    "max_file_size": 10 * 1024 * 1024,
}

KNOWN_KEYS = set(DEFAULTS) | {"enabled", "reconnect"}
GUILD_PORTALS = ("on_demand", "all")


def setting(config: Mapping[str, Any], key: str) -> Any:
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


def api_url(config: Mapping[str, Any]) -> str:
    return str(setting(config, "api_url") or DISCORD_API).rstrip("/")


def gateway_url(config: Mapping[str, Any]) -> str:
    return str(setting(config, "gateway_url") or DISCORD_GATEWAY)


def cdn_url(config: Mapping[str, Any]) -> str:
    return str(setting(config, "cdn_url") or DISCORD_CDN).rstrip("/")


def media_allowed(config: Mapping[str, Any], url: str) -> bool:
    """Whether ``url`` is on a host of ``media_hosts`` (or the api_url's host): the same
    rule as :meth:`.media.DiscordMedia.allowed` (a host without a port is its https one)."""
    return allowed_file_url(url, allowed_hosts(api_url(config), setting(config, "media_hosts")))


def validate(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in config:
        if key not in KNOWN_KEYS:
            problems.append((key, "unknown key"))
    for key, schemes in (
        ("api_url", ("http", "https")),
        ("gateway_url", ("ws", "wss")),
        ("cdn_url", ("http", "https")),
    ):
        url = str(setting(config, key))
        if url:
            parts = urlsplit(url)
            if parts.scheme not in schemes or not parts.netloc:
                problems.append((key, f"must be a {'/'.join(schemes)} URL"))
    problems += reconnect.validate(config.get("reconnect"))
    template = str(setting(config, "ghost_template"))
    if template.count("{id}") != 1:
        problems.append(("ghost_template", "must contain {id} once"))
    hosts = setting(config, "media_hosts")
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts):
        problems.append(("media_hosts", "must be a list of host names (host or host:port)"))
    if setting(config, "guild_portals") not in GUILD_PORTALS:
        problems.append(("guild_portals", "must be on_demand or all"))
    for key in ("max_file_size",):
        value = setting(config, key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            problems.append((key, "must be a number > 0"))
    return problems
