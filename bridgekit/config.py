"""Loading, validating and rewriting ``config.yaml``.

The file is read with ruamel.yaml in round-trip mode so that ``generate-registration`` can write
tokens back without losing the admin's comments or key order. Validation collects *every*
problem with its key and line, so a bad config is fixed in one go rather than one crash at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from .settings import Settings, default_of, settings_of, type_problems

ENV_PREFIX = "BRIDGEKIT_"
PERMISSION_LEVELS = ("relay", "user", "admin")
_MXID_RE = re.compile(r"^@[^:\s]+:[^\s]+$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$")
_PLACEHOLDER = "generate"


@dataclass
class Problem:
    key: str
    why: str
    line: int | None = None

    def format(self, path: str | None) -> str:
        where = f"{path}:{self.line}: " if path and self.line else (f"{path}: " if path else "")
        return f"{where}{self.key}: {self.why}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` says every reason."""

    def __init__(self, problems: list[Problem], path: str | None = None) -> None:
        self.problems = problems
        self.path = path
        super().__init__("\n".join(p.format(path) for p in problems))


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _line_of(data: Any, dotted: str) -> int | None:
    """1-based line of a dotted key in a ruamel mapping, if known.

    Keys may themselves contain dots (``permissions.example.org``), so every split is tried.
    """
    parts = dotted.split(".")

    def walk(node: Any, start: int) -> int | None:
        if not isinstance(node, CommentedMap):
            return None
        for end in range(len(parts), start, -1):
            key = ".".join(parts[start:end])
            if key not in node:
                continue
            if end == len(parts):
                try:
                    return node.lc.key(key)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    return None
            found = walk(node[key], end)
            if found is not None:
                return found
        return None

    return walk(data, 0)


class Config:
    """The parsed config. ``get("appservice.port")`` reads dotted keys."""

    def __init__(self, data: CommentedMap, path: Path | None = None) -> None:
        self.data = data
        self.path = path
        self._settings: Settings | None = None
        #: ``get`` answers by dotted key: the runtime reads some keys for every event, and
        #: each read walked ruamel maps (Python-level lookups). Cleared by ``set``.
        self._got: dict[tuple[str, Any], Any] = {}

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
        path = Path(path)
        if not path.exists():
            raise ConfigError(
                [
                    Problem(
                        "config",
                        f"file {path} does not exist; create it with "
                        f"`cp example-config.yaml {path}` and edit it",
                    )
                ]
            )
        try:
            with path.open(encoding="utf-8") as fh:
                data = _yaml().load(fh)
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError([Problem("config", f"cannot read the file: {e}")], str(path)) from e
        except YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            # One line per problem: ruamel's str(e) spans several lines.
            why = "; ".join(
                str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x
            )
            why = " ".join((why or str(e)).split())
            if mark is not None:
                why += f" (column {mark.column + 1})"
            raise ConfigError([Problem("config", f"not valid YAML: {why}", line)], str(path)) from e
        if data is None:
            data = CommentedMap()
        if not isinstance(data, CommentedMap):
            raise ConfigError([Problem("config", "top level must be a mapping")], str(path))
        config = cls(data, path)
        config.apply_env(os.environ if env is None else env)
        return config

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        return cls(_to_commented(data))

    def apply_env(self, env: Mapping[str, str]) -> None:
        """``BRIDGEKIT_APPSERVICE__PORT=8080`` overrides ``appservice.port`` (values are YAML)."""
        for name, raw in env.items():
            if not name.startswith(ENV_PREFIX) or "__" not in name:
                continue
            dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            try:
                value = YAML(typ="safe").load(raw)
            except YAMLError:
                value = raw
            self.set(dotted, raw if value is None and raw else value)

    # -- access ----------------------------------------------------------------------------

    def get(self, dotted: str, default: Any = None) -> Any:
        key = (dotted, default)
        try:
            return self._got[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable default
            return self._get(dotted, default)
        value = self._got[key] = self._get(dotted, default)
        return value

    def _get(self, dotted: str, default: Any) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def __getitem__(self, dotted: str) -> Any:
        sentinel = object()
        value = self.get(dotted, sentinel)
        if value is sentinel:
            raise KeyError(dotted)
        return value

    @property
    def settings(self) -> Settings:
        """The runtime's sections, typed, each key with its one default (settings.py)."""
        if self._settings is None:
            self._settings = settings_of(self.data)
        return self._settings

    def set(self, dotted: str, value: Any) -> None:
        self._settings = None
        self._got.clear()
        parts = dotted.split(".")
        node = self.data
        for part in parts[:-1]:
            if not isinstance(node.get(part), Mapping):
                node[part] = CommentedMap()
            node = node[part]
        node[parts[-1]] = value

    def line_of(self, dotted: str) -> int | None:
        return _line_of(self.data, dotted)

    def save(self, path: str | Path | None = None) -> None:
        path = Path(path or self.path or "config.yaml")
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            _yaml().dump(self.data, fh)
        os.replace(tmp, path)

    # -- derived values --------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return str(self["homeserver.domain"])

    @property
    def bot_mxid(self) -> str:
        return f"@{self['appservice.bot.username']}:{self.domain}"

    def enabled_networks(self) -> dict[str, Mapping[str, Any]]:
        nets = self.get("networks") or {}
        return {
            name: (section or {})
            for name, section in nets.items()
            # An empty section (``fake:``) means "enabled, all defaults".
            if section is None or (isinstance(section, Mapping) and section.get("enabled", True))
        }

    def permission_for(self, mxid: str) -> str | None:
        """The permission level of a Matrix user: exact MXID, then domain, then ``*``."""
        perms: Mapping[str, str] = self.get("permissions") or {}
        if mxid in perms:
            return perms[mxid]
        domain = mxid.split(":", 1)[1] if ":" in mxid else ""
        if domain in perms:
            return perms[domain]
        return perms.get("*")

    # -- validation ------------------------------------------------------------------------

    def validate(self, connectors: Mapping[str, Any] | None = None) -> list[Problem]:
        """Every problem in the config. ``connectors`` maps network name -> connector class."""
        problems: list[Problem] = []

        def bad(key: str, why: str) -> None:
            problems.append(Problem(key, why, self.line_of(key)))

        def need_str(key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> None:
            value = self.get(key)
            if value is None or value == "":
                bad(key, "is required")
            elif not isinstance(value, str):
                bad(key, f"must be a string, not {type(value).__name__}")
            elif pattern and not pattern.match(value):
                bad(key, f"must be {what}, got {value!r}")

        def need_port(key: str) -> None:
            value = self.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
                bad(key, f"must be a port number between 1 and 65535, got {value!r}")

        url_re = re.compile(r"^https?://[^\s/]+")
        need_str("homeserver.address", url_re, "an http(s) URL")
        need_str("homeserver.domain", _DOMAIN_RE, "a server name like example.org")
        need_str("appservice.hostname")
        need_port("appservice.port")
        need_str("appservice.address", url_re, "an http(s) URL the homeserver can reach")
        need_str("appservice.id", re.compile(r"^[A-Za-z0-9_.\-]+$"), "letters, digits, _ . -")
        need_str("appservice.bot.username", re.compile(r"^[a-z0-9._=\-/]+$"), "a valid localpart")
        for key in ("appservice.as_token", "appservice.hs_token"):
            value = self.get(key)
            if not isinstance(value, str) or not value or value == _PLACEHOLDER:
                bad(key, "not set: run `bridgekit generate-registration -c <config>` first")
        as_token = self.get("appservice.as_token")
        if as_token and as_token != _PLACEHOLDER and as_token == self.get("appservice.hs_token"):
            bad("appservice.hs_token", "must differ from as_token")
        max_body = self.get("appservice.max_body_size", default_of("appservice.max_body_size"))
        if not isinstance(max_body, int) or max_body < 1024:
            bad("appservice.max_body_size", "must be an integer number of bytes >= 1024")

        db = self.get("database.url")
        if not isinstance(db, str) or not re.match(r"^(sqlite|postgres|postgresql)://", db):
            bad("database.url", f"must start with sqlite:// or postgres://, got {db!r}")

        perms = self.get("permissions")
        if not isinstance(perms, Mapping) or not perms:
            bad("permissions", "must map '*', a domain or an MXID to relay, user or admin")
        else:
            for who, level in perms.items():
                key = f"permissions.{who}"
                if level not in PERMISSION_LEVELS:
                    bad(key, f"level must be one of {', '.join(PERMISSION_LEVELS)}, got {level!r}")
                if who != "*" and not _MXID_RE.match(str(who)) and not _DOMAIN_RE.match(str(who)):
                    bad(key, "must be '*', a domain or a Matrix user id")

        dp = self.get("double_puppet.secrets") or {}
        if not isinstance(dp, Mapping):
            bad("double_puppet.secrets", "must map homeserver domains to secrets")
        else:
            for server, secret in dp.items():
                if not isinstance(secret, str) or not secret.startswith("as_token:"):
                    bad(f"double_puppet.secrets.{server}", "must be 'as_token:<token>'")

        level = str(self.get("logging.level", default_of("logging.level"))).upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            bad("logging.level", f"must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        if self.get("metrics.enabled"):
            need_port("metrics.port")

        event_loop = self.get("bridge.event_loop", default_of("bridge.event_loop"))
        if event_loop not in ("auto", "uvloop", "asyncio"):
            bad("bridge.event_loop", "must be auto, uvloop or asyncio")

        hold = self.get("bridge.merge_hold", default_of("bridge.merge_hold"))
        if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 <= hold <= 5:
            bad("bridge.merge_hold", "must be a number of seconds from 0 to 5")

        refresh = self.get("bridge.presence_refresh", default_of("bridge.presence_refresh"))
        if isinstance(refresh, bool) or not isinstance(refresh, int | float) or refresh < 0:
            bad("bridge.presence_refresh", "must be a number of seconds (0: off)")

        self._validate_media(bad, need_port)
        self._validate_encryption(bad)
        for key in ("per_minute", "cleanup_after"):
            value = self.get(f"bridge.alias_rooms.{key}", default_of(f"bridge.alias_rooms.{key}"))
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                bad(f"bridge.alias_rooms.{key}", "must be a number, 0 or more (0: no limit)")

        for key in ("initial_limit", "catchup_limit", "page_size"):
            value = self.get(f"bridge.backfill.{key}", default_of(f"bridge.backfill.{key}"))
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                bad(f"bridge.backfill.{key}", "must be a whole number, 0 or more (0: off)")
        if not isinstance(
            self.get("bridge.backfill.catchup", default_of("bridge.backfill.catchup")), bool
        ):
            bad("bridge.backfill.catchup", "must be true or false")

        relay_fmt = self.get("bridge.relay.format", "")
        if relay_fmt and "{message}" not in str(relay_fmt):
            bad("bridge.relay.format", "must contain {message}")

        networks = self.get("networks")
        if networks is not None and not isinstance(networks, Mapping):
            bad("networks", "must be a mapping of network name to its section")
        elif connectors is not None:
            for name, section in (networks or {}).items():
                if section is not None and not isinstance(section, Mapping):
                    bad(f"networks.{name}", "must be a mapping (or empty for the defaults)")
            for name, section in self.enabled_networks().items():
                cls = connectors.get(name)
                if cls is None:
                    bad(
                        f"networks.{name}",
                        "no installed connector has this name "
                        f"(installed: {', '.join(sorted(connectors)) or 'none'})",
                    )
                    continue
                for key, why in cls.validate_config(section):
                    bad(f"networks.{name}.{key}", why)
        # Any other typed key of the wrong type (the checks above name theirs more exactly).
        named = {p.key for p in problems}
        for key, why in type_problems(Settings, self.data):
            if not any(k == key or k.startswith(f"{key}.") for k in named):
                bad(key, why)
        return problems

    def _validate_media(self, bad: Any, need_port: Any) -> None:
        """``media``: how remote media is fetched, and where media links are served."""
        from .matrix.netguard import parse_allow_entry

        media = self.get("media")
        if media is None:
            return
        if not isinstance(media, Mapping):
            bad("media", "must be a mapping")
            return

        def number(key: str, low: float, high: float, integer: bool = True) -> None:
            value = media.get(key)
            kinds = int if integer else int | float
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
                what = "an integer" if integer else "a number"
                bad(f"media.{key}", f"must be {what} from {low:g} to {high:g}, got {value!r}")

        number("max_size", 1024, 2**40)
        number("timeout", 0.1, 600, integer=False)
        number("concurrency", 1, 1000)
        number("max_redirects", 0, 20)
        allow = media.get("allow")
        if allow is not None and not isinstance(allow, list):
            bad("media.allow", "must be a list of addresses or CIDRs, each with an optional port")
        for i, entry in enumerate(allow if isinstance(allow, list) else []):
            try:
                parse_allow_entry(str(entry))
            except ValueError as e:
                bad("media.allow", f"entry {i + 1} ({entry!r}): {e}")
        hostname = media.get("hostname")
        if hostname is not None and (not isinstance(hostname, str) or not hostname):
            bad("media.hostname", "must be the address to listen on, like 0.0.0.0")
        if media.get("port") is not None:
            need_port("media.port")
            same_host = (media.get("hostname") or self.get("appservice.hostname")) == self.get(
                "appservice.hostname"
            )
            if media.get("port") == self.get("appservice.port") and same_host:
                bad("media.port", "must differ from appservice.port (or leave it out)")
        public = media.get("public_address")
        if public is not None and not re.match(r"^https?://[^\s/]+", str(public)):
            bad("media.public_address", "must be an http(s) URL")

    def _validate_encryption(self, bad: Any) -> None:
        """``encryption``: only with the ``e2ee`` extra installed, and with a pickle key."""
        enc = self.get("encryption")
        if enc is None:
            return
        if not isinstance(enc, Mapping):
            bad("encryption", "must be a mapping")
            return
        sharing = enc.get("allow_key_sharing", default_of("encryption.allow_key_sharing"))
        if sharing not in ("off", "members"):
            bad("encryption.allow_key_sharing", f"must be off or members, got {sharing!r}")
        timeout = enc.get("decrypt_timeout", default_of("encryption.decrypt_timeout"))
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            bad("encryption.decrypt_timeout", "must be a number of seconds above 0")
        if enc.get("allow") is not True:
            for key in ("default", "require"):
                if enc.get(key) is True:
                    bad(f"encryption.{key}", "needs encryption.allow: true")
            return
        from .crypto import missing_extra

        missing = missing_extra()
        if missing:
            bad(
                "encryption.allow",
                f"needs the e2ee extra ({missing} is not installed): pip install 'bridgekit[e2ee]'",
            )
        key = enc.get("pickle_key")
        if not isinstance(key, str) or key in ("", _PLACEHOLDER) or len(key) < 16:
            bad(
                "encryption.pickle_key",
                "not set: run `bridgekit generate-registration -c <config>` (it generates one), "
                "or give 16 characters or more",
            )

    def check(self, connectors: Mapping[str, Any] | None = None) -> None:
        problems = self.validate(connectors)
        if problems:
            raise ConfigError(problems, str(self.path) if self.path else None)


def _to_commented(data: Any) -> Any:
    if isinstance(data, Mapping):
        out = CommentedMap()
        for k, v in data.items():
            out[k] = _to_commented(v)
        return out
    if isinstance(data, list):
        return [_to_commented(v) for v in data]
    return data


def iter_keys(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        yield dotted
        if isinstance(value, Mapping):
            yield from iter_keys(value, dotted + ".")
