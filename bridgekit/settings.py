"""The runtime's config sections as typed objects, each key with its one default.

``config.yaml`` is read (and rewritten, keeping comments) by :mod:`bridgekit.config`; this
module gives the runtime a typed view of it: ``config.settings.bridge.merge_hold`` is a float
whether the key is set or not, and its default is written here and nowhere else (validation
and ``example-config.yaml`` agree with it: ``tests/unit/test_settings.py`` checks the example).
Connector sections (``networks.<name>``) stay plain mappings: each connector reads its own.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: The relay formats' defaults (``bridge.relay.format`` / ``emote_format``).
DEFAULT_RELAY_FORMAT = "<{displayname}> {message}"
DEFAULT_RELAY_EMOTE_FORMAT = "* {displayname} {message}"


@dataclass(frozen=True)
class HomeserverSettings:
    address: str = ""
    domain: str = ""


@dataclass(frozen=True)
class BotSettings:
    username: str = "bridgekitbot"
    displayname: str | None = None
    avatar: str | None = None


@dataclass(frozen=True)
class AppserviceSettings:
    hostname: str = "127.0.0.1"
    port: int = 29300
    address: str = ""
    public_address: str | None = None
    id: str = "bridgekit"
    max_body_size: int = 10 * 1024 * 1024
    as_token: str = ""
    hs_token: str = ""
    bot: BotSettings = field(default_factory=BotSettings)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///bridgekit.db"
    max_connections: int = 10


@dataclass(frozen=True)
class RelaySettings:
    enabled: bool = True
    format: str = DEFAULT_RELAY_FORMAT
    emote_format: str = DEFAULT_RELAY_EMOTE_FORMAT


@dataclass(frozen=True)
class AliasRoomSettings:
    #: Rooms made because someone joined an unknown alias, per minute (0: no limit).
    per_minute: float = 10
    #: Seconds after which such a room nobody joined is cleaned up (0: never).
    cleanup_after: float = 600


@dataclass(frozen=True)
class BackfillSettings:
    """History from the network (:mod:`bridgekit.portal.backfill`)."""

    #: When a portal room is created: up to this many of the chat's newest messages (0: none).
    initial_limit: int = 50
    #: When a login connects: what was said since the newest bridged message, up to
    #: ``catchup_limit`` per portal (``bridge.backfill_limit``, its old name, if only it is set).
    catchup: bool = True
    catchup_limit: int = 100
    page_size: int = 50


@dataclass(frozen=True)
class BridgeSettings:
    command_prefix: str = "!"
    edit_fallback: bool = True
    message_status_events: bool = False
    message_error_notices: bool = True
    state_notice_delay: float = 60
    event_loop: str = "auto"
    merge_hold: float = 0.25
    presence_refresh: float = 25
    #: Before ``bridge.backfill.catchup_limit`` existed: still read as its fallback.
    backfill_limit: int | None = None
    backfill: BackfillSettings = field(default_factory=lambda: BackfillSettings())
    #: A space per login listing its portals, beside the spaces of remote containers.
    personal_spaces: bool = False
    alias_rooms: AliasRoomSettings = field(default_factory=AliasRoomSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"


@dataclass(frozen=True)
class MetricsSettings:
    enabled: bool = False
    hostname: str = "127.0.0.1"
    port: int = 29301


@dataclass(frozen=True)
class MediaSettings:
    """How remote media is fetched (:mod:`bridgekit.matrix.fetcher`) and where links are served."""

    allow: tuple[str, ...] = ()
    max_size: int = 20 * 1024 * 1024
    timeout: float = 30
    concurrency: int = 8
    max_redirects: int = 5
    hostname: str | None = None
    port: int | None = None
    public_address: str | None = None


@dataclass(frozen=True)
class DoublePuppetSettings:
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteKeysSettings:
    """When megolm keys are forgotten (mautrix.crypto's switches; all off keeps every key,
    which is what lets a late event still be decrypted)."""

    delete_outbound_on_ack: bool = False
    dont_store_outbound: bool = False
    delete_prev_on_new_session: bool = False
    delete_fully_used_on_decrypt: bool = False
    delete_on_device_delete: bool = False


@dataclass(frozen=True)
class EncryptionSettings:
    """End-to-bridge encryption (:mod:`bridgekit.crypto`; needs the ``e2ee`` extra)."""

    #: Portals may be encrypted rooms (the bot gets a device and keys).
    allow: bool = False
    #: New portal rooms are created encrypted.
    default: bool = False
    #: In an encrypted portal, unencrypted events from users are refused.
    require: bool = False
    #: Encrypts the keys in the database; ``generate``: generate-registration makes one.
    pickle_key: str = "generate"
    #: Who may ask the bot for room keys it holds: ``off`` or ``members`` (joined members).
    allow_key_sharing: str = "off"
    #: Seconds an undecryptable event waits for its key before its sender is told.
    decrypt_timeout: float = 60
    delete_keys: DeleteKeysSettings = field(default_factory=DeleteKeysSettings)


@dataclass(frozen=True)
class Settings:
    homeserver: HomeserverSettings = field(default_factory=HomeserverSettings)
    appservice: AppserviceSettings = field(default_factory=AppserviceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    double_puppet: DoublePuppetSettings = field(default_factory=DoublePuppetSettings)
    encryption: EncryptionSettings = field(default_factory=EncryptionSettings)


T = TypeVar("T")


def default_of(dotted: str) -> Any:
    """The default of a dotted key (``bridge.merge_hold``), for validation messages."""
    node: Any = Settings()
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def build(cls: type[T], data: Any) -> T:
    """``cls`` filled from a (validated) mapping: a missing or null key takes its default,
    values are converted to the field's type (YAML ``25`` for a float field)."""
    if not isinstance(data, Mapping):
        data = {}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        raw = data.get(f.name)
        if raw is None:
            continue  # the default
        values[f.name] = _convert(hints[f.name], raw)
    return cls(**values)


def _convert(hint: Any, raw: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, raw)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if optional:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple(str(v) for v in raw) if isinstance(raw, list | tuple) else ()
    if origin is not None and issubclass(origin, Mapping):
        return dict(raw) if isinstance(raw, Mapping) else {}
    if hint is bool:
        return bool(raw)
    if hint in (int, float, str):
        try:
            return hint(raw)
        except (TypeError, ValueError):
            return raw  # validation names it; the typed view does not hide it
    return raw


def type_problems(cls: type, data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, why) for each set key whose value is not of its field's type: the typed
    view would read it as something else (YAML 1.2 reads ``no`` as a string, and ``bool``
    of any non-empty string is True) or hand a string to code that expects seconds."""
    if not isinstance(data, Mapping):
        return []
    hints = typing.get_type_hints(cls)
    out: list[tuple[str, str]] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        raw, key, hint = data.get(f.name), f"{prefix}{f.name}", hints[f.name]
        if raw is None:
            continue
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint) or hint
        if dataclasses.is_dataclass(hint):
            if isinstance(raw, Mapping):
                out += type_problems(hint, raw, f"{key}.")  # type: ignore[arg-type]
            else:
                out.append((key, "must be a mapping"))
        elif hint is bool and not isinstance(raw, bool):
            out.append((key, f"must be true or false, got {raw!r}"))
        elif hint is int and (isinstance(raw, bool) or not isinstance(raw, int)):
            out.append((key, f"must be a whole number, got {raw!r}"))
        elif hint is float and (
            isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw
        ):
            out.append((key, f"must be a number, got {raw!r}"))
        elif hint is str and not isinstance(raw, str):
            out.append((key, f"must be a string, got {raw!r}"))
        elif origin is tuple and not isinstance(raw, list | tuple):
            out.append((key, "must be a list"))
        elif isinstance(origin, type) and issubclass(origin, Mapping):
            if not isinstance(raw, Mapping):
                out.append((key, "must be a mapping"))
    return out


def settings_of(data: Mapping[str, Any]) -> Settings:
    return build(Settings, data)
