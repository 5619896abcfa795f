"""The ``networks.irc`` config section: one entry per IRC server, every key validated.

Example::

    networks:
      irc:
        servers:
          libera:
            host: irc.libera.chat
            port: 6697
            tls: true
            tls_ca_file: null           # PEM of CAs to trust instead of the system's
            sasl_username: mybot        # or `password:` for a server password
            sasl_password: secret
            services_mask: "NickServ!NickServ@services.libera.chat"  # without SASL, IDENTIFY
            nickserv: NickServ          # goes only to this nick, and only if it matches the mask
            nick_template: "{displayname}[m]"
            send_rate: 1.0              # lines per second once the burst is used
            burst: 5
            line_limit: 3               # more lines than this become one pastebin link
            mode_power_levels: {o: 50, v: 1}
            relay_only: false
            idle_timeout: 172800
            follow_channel_access: true  # kept out of a channel (kick, ban, +i...): out of its room
            read_batch: 0.05            # a connection receiving a stream reads every 50 ms,
            read_batch_max: 0.2         # ...up to every 200 ms while each read finds several lines
            follower_read_batch: 0.25   # ...and one whose channels another bridges, every 250 ms
            reconnect: {rate: 20, concurrency: 100, min_delay: 2, max_delay: 300}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridgekit.outbox.remote_queue import STREAM_GAP

from .names import InvalidNameError, validate_channel

#: Server names appear in ghost localparts, aliases and portal keys: keep them plain.
SERVER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,31}$")
DEFAULT_GHOST_TEMPLATE = "_irc_{server}_{nick}"
DEFAULT_ALIAS_TEMPLATE = "_irc_{server}_{channel}"
DEFAULT_NICK_TEMPLATE = "{displayname}[m]"
DEFAULT_EDIT_FORMAT = "* {diff}"
_NICK_RE = re.compile(r"[A-Za-z\[\]\\`_^{|}][\w\[\]\\`^{|}-]*")
_LOCALPART_TEXT_RE = re.compile(r"^[a-z0-9._=/-]*$")
#: Reads closer together than this are a stream: the runtime's own stream gap, which a read
#: pause must stay below, or the runtime would take each batch for the end of the stream.
READ_STREAM_GAP = STREAM_GAP

_SERVER_KEYS = {
    "host",
    "port",
    "tls",
    "tls_verify",
    "tls_ca_file",
    "password",
    "sasl_username",
    "sasl_password",
    "ghost_template",
    "alias_template",
    "nick_template",
    "max_connections",
    "idle_timeout",
    "line_limit",
    "paste_fallback",
    "send_rate",
    "burst",
    "mode_power_levels",
    "relay_only",
    "relay_nick",
    "follow_channel_access",
    "edit_format",
    "reconnect",
    "netsplit_debounce",
    "names_drip_delay",
    "read_batch",
    "read_batch_max",
    "follower_read_batch",
    "channels",
    "realname",
    "username",
    "services_mask",
    "nickserv",
}
_RECONNECT_KEYS = {"rate", "concurrency", "min_delay", "max_delay"}


@dataclass
class ServerConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 6667
    tls: bool = False
    tls_verify: bool = True
    #: PEM file of the certificate authorities to trust for this server instead of the
    #: system's (a private network, a self-signed server). None: the system store.
    tls_ca_file: str | None = None
    password: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ghost_template: str = DEFAULT_GHOST_TEMPLATE
    alias_template: str = DEFAULT_ALIAS_TEMPLATE
    nick_template: str = DEFAULT_NICK_TEMPLATE
    max_connections: int = 10_000
    idle_timeout: float = 172_800.0  # two days, like matrix-appservice-irc
    line_limit: int = 3
    paste_fallback: bool = True
    send_rate: float = 1.0
    burst: int = 5
    mode_power_levels: dict[str, int] = field(default_factory=lambda: {"o": 50, "v": 1})
    relay_only: bool = False
    relay_nick: str = "MatrixRelay"
    #: A Matrix user whose connection the channel keeps out (kicked, banned, invite-only,
    #: key, full, registered nicks only) is removed from the channel's room, which would
    #: otherwise go on showing them what the other connections hear. Off: they stay, told
    #: why, and their messages are refused until a join works.
    follow_channel_access: bool = True
    edit_format: str = DEFAULT_EDIT_FORMAT
    #: Connection starts per second (all of this server's connections together): a mass
    #: reconnect after a restart is spread out instead of flooding the server.
    reconnect_rate: float = 20.0
    #: Connections in TCP connect + registration at once. InspIRCd takes ~1 s to register a
    #: client, so this must exceed rate x registration time or it, not the rate, paces starts.
    reconnect_concurrency: int = 100
    reconnect_min_delay: float = 2.0
    reconnect_max_delay: float = 300.0
    netsplit_debounce: float = 30.0
    names_drip_delay: float = 0.0
    #: Seconds a connection that is receiving a stream of lines (reads less than
    #: :data:`READ_STREAM_GAP` apart) leaves its socket unread, so the next lines are handled
    #: together: one wake-up, one parse loop and one outbox commit for several lines. 0: off.
    read_batch: float = 0.05
    #: While each read of a stream finds more than one line (a bot, a flood: the stream goes
    #: on), the pause doubles after each read, up to this. A wake-up of the bridge costs far
    #: more than a line (about 0.5 ms against 0.1 ms on the benchmark), so at 50 lines/s
    #: reading every 200 ms instead of every 50 ms nearly halved the CPU per line. Lines
    #: of several people in a busy channel mostly arrive one per read and keep the short
    #: pause. Below :data:`READ_STREAM_GAP`.
    read_batch_max: float = 0.2
    #: ``read_batch`` for a connection receiving a stream while another connection is the
    #: listener of every channel it is in (its lines are only dropped as duplicates): in a
    #: busy channel shared by N Matrix users, each line then wakes one connection promptly
    #: instead of N. A lone line is still read at once; a private message to such a
    #: connection in a busy channel waits at most this long. 0: off.
    follower_read_batch: float = 0.25
    realname: str = "Matrix user (bridgekit)"
    username: str = "matrix"
    #: ``nick!user@host`` glob the server's NickServ must match (USERHOST) before a stored
    #: password is sent to it when the server offers no SASL. None: never sent that way.
    services_mask: str | None = None
    nickserv: str = "NickServ"

    def ghost_localpart_template(self) -> str:
        return self.ghost_template.replace("{server}", self.name)

    def alias_localpart_template(self) -> str:
        return self.alias_template.replace("{server}", self.name)


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_template(
    key: str, value: Any, placeholder: str, problems: list[tuple[str, str]]
) -> None:
    if not isinstance(value, str) or placeholder not in value:
        problems.append((key, f"must be a string containing {placeholder}"))
        return
    fixed = re.sub(r"\{\w+\}", "", value)
    if not _LOCALPART_TEXT_RE.match(fixed):
        problems.append((key, "may only contain a-z 0-9 . _ = - / besides placeholders"))
    unknown = set(re.findall(r"\{(\w+)\}", value)) - {"server", placeholder.strip("{}")}
    if unknown:
        problems.append((key, f"unknown placeholder(s): {', '.join(sorted(unknown))}"))
    if value.endswith(placeholder) is False:
        problems.append((key, f"must end with {placeholder} so ids stay reversible"))


def validate(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every problem in the ``networks.irc`` section as ``(key, why)`` pairs."""
    problems: list[tuple[str, str]] = []
    for key in config:
        if key not in ("enabled", "servers", "merge_lines"):
            problems.append((str(key), "unknown key (expected enabled, servers, merge_lines)"))
    if not isinstance(config.get("merge_lines", True), bool):
        problems.append(("merge_lines", "must be true or false"))
    servers = config.get("servers")
    if servers is None:
        return problems
    if not isinstance(servers, Mapping):
        return [*problems, ("servers", "must map server names to their settings")]
    for name, section in servers.items():
        base = f"servers.{name}"
        if not isinstance(name, str) or not SERVER_NAME_RE.match(name):
            problems.append((base, "server name must be lowercase a-z 0-9 . - (no _), max 32"))
        if not isinstance(section, Mapping):
            problems.append((base, "must be a mapping with at least host"))
            continue
        for key in section:
            if key not in _SERVER_KEYS:
                problems.append((f"{base}.{key}", "unknown key"))
        host = section.get("host")
        if not isinstance(host, str) or not host or any(c in host for c in " \r\n\0/"):
            problems.append((f"{base}.host", "is required: a host name or address"))
        port = section.get("port", 6667)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            problems.append((f"{base}.port", f"must be a port number, got {port!r}"))
        for key in ("tls", "tls_verify", "relay_only", "paste_fallback", "follow_channel_access"):
            if key in section and not isinstance(section[key], bool):
                problems.append((f"{base}.{key}", "must be true or false"))
        ca_file = section.get("tls_ca_file")
        if ca_file is not None and (
            not isinstance(ca_file, str) or any(c in ca_file for c in "\r\n\0")
        ):
            problems.append((f"{base}.tls_ca_file", "must be the path of a PEM file"))
        elif ca_file is not None and not os.path.isfile(ca_file):
            problems.append((f"{base}.tls_ca_file", f"no such file: {ca_file}"))
        for key in (
            "password",
            "sasl_username",
            "sasl_password",
            "relay_nick",
            "realname",
            "username",
        ):
            value = section.get(key)
            if value is not None and (
                not isinstance(value, str) or any(c in value for c in "\r\n\0")
            ):
                problems.append((f"{base}.{key}", "must be a single-line string"))
        mask = section.get("services_mask")
        if mask is not None and (
            not isinstance(mask, str)
            or any(c in mask for c in " \r\n\0")
            or not re.fullmatch(r"[^!@]+![^!@]+@[^!@]+", mask)
        ):
            problems.append((f"{base}.services_mask", "must be a nick!user@host mask"))
        ns = section.get("nickserv")
        if ns is not None and (not isinstance(ns, str) or not _NICK_RE.fullmatch(ns)):
            problems.append((f"{base}.nickserv", "must be a nick"))
        if bool(section.get("sasl_username")) != bool(section.get("sasl_password")):
            problems.append(
                (f"{base}.sasl_password", "sasl_username and sasl_password go together")
            )
        if "ghost_template" in section:
            _check_template(f"{base}.ghost_template", section["ghost_template"], "{nick}", problems)
        if "alias_template" in section:
            _check_template(
                f"{base}.alias_template", section["alias_template"], "{channel}", problems
            )
        nick_tpl = section.get("nick_template", DEFAULT_NICK_TEMPLATE)
        if not isinstance(nick_tpl, str) or not re.search(r"\{(displayname|localpart)\}", nick_tpl):
            problems.append((f"{base}.nick_template", "must contain {displayname} or {localpart}"))
        elif set(re.findall(r"\{(\w*)\}", nick_tpl)) - {"displayname", "localpart"}:
            problems.append((f"{base}.nick_template", "placeholders: {displayname}, {localpart}"))
        for key, minimum in (("max_connections", 1), ("line_limit", 1), ("burst", 1)):
            value = section.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < minimum
            ):
                problems.append((f"{base}.{key}", f"must be an integer >= {minimum}"))
        for key in ("idle_timeout", "netsplit_debounce", "names_drip_delay"):
            value = section.get(key)
            if value is not None and (not _num(value) or value < 0):
                problems.append((f"{base}.{key}", "must be a number of seconds >= 0 (0 = off)"))
        batch = section.get("read_batch")
        if batch is not None and (not _num(batch) or not 0 <= batch < READ_STREAM_GAP):
            problems.append(
                (
                    f"{base}.read_batch",
                    f"must be a number of seconds >= 0 and below {READ_STREAM_GAP} (0 = off)",
                )
            )
        batch_max = section.get("read_batch_max")
        if batch_max is not None and (
            not _num(batch_max)
            or not 0 <= batch_max < READ_STREAM_GAP
            or batch_max < (batch if _num(batch) else ServerConfig.read_batch)
        ):
            problems.append(
                (
                    f"{base}.read_batch_max",
                    f"must be a number of seconds from read_batch to below {READ_STREAM_GAP}",
                )
            )
        follower = section.get("follower_read_batch")
        if follower is not None and (not _num(follower) or not 0 <= follower <= 2):
            problems.append(
                (f"{base}.follower_read_batch", "must be a number of seconds from 0 to 2 (0 = off)")
            )
        rate = section.get("send_rate")
        if rate is not None and (not _num(rate) or rate <= 0):
            problems.append((f"{base}.send_rate", "must be a number of lines per second > 0"))
        modes = section.get("mode_power_levels")
        if modes is not None:
            if not isinstance(modes, Mapping):
                problems.append((f"{base}.mode_power_levels", "must map mode letters to levels"))
            else:
                for mode, level in modes.items():
                    if not (isinstance(mode, str) and len(mode) == 1 and mode.isalpha()):
                        problems.append((f"{base}.mode_power_levels.{mode}", "must be one letter"))
                    if (
                        not isinstance(level, int)
                        or isinstance(level, bool)
                        or not 0 <= level <= 99
                    ):
                        problems.append(
                            (f"{base}.mode_power_levels.{mode}", "level must be an integer 0-99")
                        )
        edit = section.get("edit_format")
        if edit and (
            not isinstance(edit, str)
            or not re.search(r"\{(diff|text)\}", edit)
            or set(re.findall(r"\{(\w*)\}", edit)) - {"diff", "text"}
        ):
            problems.append(
                (
                    f"{base}.edit_format",
                    "must contain {diff} or {text} (and no other"
                    " placeholder), or be empty to drop edits",
                )
            )
        reconnect = section.get("reconnect")
        if reconnect is not None:
            if not isinstance(reconnect, Mapping):
                problems.append((f"{base}.reconnect", "must be a mapping"))
            else:
                for key, value in reconnect.items():
                    if key not in _RECONNECT_KEYS:
                        problems.append((f"{base}.reconnect.{key}", "unknown key"))
                    elif not _num(value) or value <= 0:
                        problems.append((f"{base}.reconnect.{key}", "must be a number > 0"))
                if (
                    _num(reconnect.get("min_delay"))
                    and _num(reconnect.get("max_delay"))
                    and reconnect["min_delay"] > reconnect["max_delay"]
                ):
                    problems.append((f"{base}.reconnect.min_delay", "must be <= max_delay"))
        channels = section.get("channels")
        if channels is not None:
            if not isinstance(channels, list):
                problems.append((f"{base}.channels", "must be a list of channel names"))
            else:
                for chan in channels:
                    try:
                        validate_channel(chan if isinstance(chan, str) else "")
                    except InvalidNameError as e:
                        problems.append((f"{base}.channels", str(e)))
    return problems


def parse(config: Mapping[str, Any]) -> dict[str, ServerConfig]:
    """Server configs with defaults filled in (assumes :func:`validate` passed)."""
    out: dict[str, ServerConfig] = {}
    for name, section in (config.get("servers") or {}).items():
        section = dict(section or {})
        reconnect = dict(section.pop("reconnect", None) or {})
        section.pop("channels", None)
        sc = ServerConfig(name=name, **{k: v for k, v in section.items() if k in _SERVER_KEYS})
        if "mode_power_levels" in section:
            sc.mode_power_levels = dict(section["mode_power_levels"])
        sc.reconnect_rate = float(reconnect.get("rate", sc.reconnect_rate))
        sc.reconnect_concurrency = int(reconnect.get("concurrency", sc.reconnect_concurrency))
        sc.reconnect_min_delay = float(reconnect.get("min_delay", sc.reconnect_min_delay))
        sc.reconnect_max_delay = float(reconnect.get("max_delay", sc.reconnect_max_delay))
        if "read_batch_max" not in section:  # a read_batch set above the default maximum
            sc.read_batch_max = max(sc.read_batch_max, sc.read_batch)
        out[name] = sc
    return out
