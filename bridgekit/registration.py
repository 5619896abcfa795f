"""Generating the appservice registration an admin gives the homeserver."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .config import Config
from .contract.connector import NetworkConnector


def _template_to_regex(template: str, domain: str, sigil: str) -> str:
    """``_irc_{server}_{nick}`` -> ``^@_irc_.+_.+:example\\.org$``.

    Anchored at both ends: homeservers use ``re.match``, which would otherwise also claim
    ``@_irc_x:example.org.evil.com`` on other servers.
    """
    parts = re.split(r"\{\w+\}", template)
    body = ".+".join(re.escape(p) for p in parts)
    return f"^{re.escape(sigil)}{body}:{re.escape(domain)}$"


def namespaces(
    config: Config, connectors: Mapping[str, type[NetworkConnector]]
) -> tuple[list[str], list[str]]:
    bot = re.escape(str(config["appservice.bot.username"]))
    users: list[str] = [f"^@{bot}:{re.escape(config.domain)}$"]
    aliases: list[str] = []
    for name, section in config.enabled_networks().items():
        cls = connectors.get(name)
        if cls is None:
            continue
        ghost_tpls, alias_tpls = cls.namespace_templates(section)
        users += [_template_to_regex(t, config.domain, "@") for t in ghost_tpls]
        aliases += [_template_to_regex(t, config.domain, "#") for t in alias_tpls]
    return users, aliases


def sender_localpart(config: Config) -> str:
    """The registration's sender: the bot, unless encryption needs them apart (see
    :func:`build_registration`)."""
    bot = str(config["appservice.bot.username"])
    return f"{bot}-as" if config.get("encryption.allow") is True else bot


def build_registration(
    config: Config, connectors: Mapping[str, type[NetworkConnector]]
) -> dict[str, Any]:
    users, aliases = namespaces(config, connectors)
    reg: dict[str, Any] = {
        "id": str(config["appservice.id"]),
        "url": str(config["appservice.address"]),
        "as_token": str(config["appservice.as_token"]),
        "hs_token": str(config["appservice.hs_token"]),
        "sender_localpart": str(config["appservice.bot.username"]),
        "namespaces": {
            "users": [{"regex": r, "exclusive": True} for r in users],
            "aliases": [{"regex": r, "exclusive": True} for r in aliases],
            "rooms": [],
        },
        "rate_limited": False,
        "receive_ephemeral": True,
        "de.sorunome.msc2409.push_ephemeral": True,
        "protocols": sorted(config.enabled_networks()),
    }
    if config.get("encryption.allow") is True:
        # End-to-bridge encryption: to-device messages, one-time-key counts and device lists
        # in transactions (MSC2409, MSC3202), and the bot's device made without a login
        # (MSC4190). Synapse also needs experimental_features: registration/README.md.
        reg["org.matrix.msc3202"] = True
        reg["io.element.msc4190"] = True
        # The bot's device reads its to-device messages with /sync too (Synapse drops them
        # from transactions while it counts the bridge as down), and Synapse cannot /sync
        # as an appservice's sender: the sender is another user, the bot one in the
        # namespace (its requests name it with ?user_id= as before).
        reg["sender_localpart"] = sender_localpart(config)
    return reg


def generate(
    config: Config,
    connectors: Mapping[str, type[NetworkConnector]],
    out: Path,
    *,
    regenerate_tokens: bool = False,
) -> dict[str, Any]:
    """Create tokens (unless already set), write them to config.yaml, write the registration."""
    new_tokens: dict[str, str] = {}
    for key in ("appservice.as_token", "appservice.hs_token"):
        value = config.get(key)
        if (
            regenerate_tokens
            or not isinstance(value, str)
            or len(value) < 32
            or value == "generate"
        ):
            new_tokens[key] = secrets.token_hex(32)  # 64 hex characters
            config.set(key, new_tokens[key])
    key = config.get("encryption.pickle_key")
    if config.get("encryption.allow") is True and (
        not isinstance(key, str) or key in ("", "generate")
    ):
        # Only when there is none, even with --regenerate: another pickle key would make the
        # crypto keys stored in the database unreadable.
        new_tokens["encryption.pickle_key"] = secrets.token_hex(32)
        config.set("encryption.pickle_key", new_tokens["encryption.pickle_key"])
    if config.get("appservice.as_token") == config.get("appservice.hs_token"):
        new_tokens["appservice.hs_token"] = secrets.token_hex(32)
        config.set("appservice.hs_token", new_tokens["appservice.hs_token"])
    reg = build_registration(config, connectors)
    out.parent.mkdir(parents=True, exist_ok=True)
    yaml = YAML()
    yaml.default_flow_style = False
    # Owner-only from the first byte: the file holds both tokens, so it must never exist
    # world-readable, not even between writing and a later chmod.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through open()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Generated by `bridgekit generate-registration`. Give this file to your\n")
        fh.write("# homeserver (Synapse: app_service_config_files). Keep it secret.\n")
        yaml.dump(reg, fh)
    if config.path is not None and new_tokens:
        # Write only the new tokens into the file as it is on disk: ``config`` also holds
        # BRIDGEKIT_* environment overrides (perhaps a database password) that must not be saved.
        on_disk = Config.load(config.path, env={})
        for key, value in new_tokens.items():
            on_disk.set(key, value)
        on_disk.save()
    return reg


def double_puppet_registration(domain: str, as_token: str | None = None) -> dict[str, Any]:
    """A second, non-exclusive registration whose token lets the bridge act as local users."""
    token = as_token or secrets.token_hex(32)
    return {
        "id": "bridgekit-doublepuppet",
        "url": None,
        "as_token": token,
        "hs_token": secrets.token_hex(32),
        "sender_localpart": secrets.token_hex(8),
        "namespaces": {"users": [{"regex": f"@.*:{re.escape(domain)}", "exclusive": False}]},
        "rate_limited": False,
    }
