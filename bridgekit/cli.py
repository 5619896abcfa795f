"""Command line: ``bridgekit generate-registration|run|check-config|migrate -c config.yaml``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from . import __version__
from .config import Config, ConfigError, Problem

EXIT_CONFIG = 2

T = TypeVar("T")


def _fail(err: ConfigError) -> int:
    print("Configuration problems:", file=sys.stderr)
    for p in err.problems:
        print(f"  {p.format(err.path)}", file=sys.stderr)
    return EXIT_CONFIG


def _load(path: str, *, need_tokens: bool = True) -> tuple[Config, dict]:
    from .bridge import discover_connectors

    config = Config.load(path)
    connectors = discover_connectors()
    problems = config.validate(connectors)
    if not need_tokens:  # generate-registration: it makes them
        problems = [p for p in problems if p.key not in GENERATED_SECRETS]
    if problems:
        raise ConfigError(problems, str(config.path))
    return config, connectors


#: What ``generate-registration`` writes into the config when missing.
GENERATED_SECRETS = ("appservice.as_token", "appservice.hs_token", "encryption.pickle_key")


def setup_logging(config: Config) -> None:
    level = config.settings.logging.level.upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Keep tokens out of logs even at DEBUG: mautrix logs request URLs, aiosqlite every
    # statement with its parameters (a login row holds its network's tokens), slack-sdk the
    # Socket Mode URLs and payloads.
    for name in QUIET_AT_DEBUG:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.root.level))


#: Libraries whose DEBUG output carries secrets: never below INFO.
QUIET_AT_DEBUG = (
    "bridgekit.matrix.client.api",
    "aiosqlite",
    "slack_sdk",
    "bridgekit.slack.sdk",
    # the encryption device's requests, with their bodies (keys, account data)
    "bridgekit.crypto.client",
)


def cmd_generate_registration(args: argparse.Namespace) -> int:
    from .homeserver_config import HomeserverConfigError, add_bridge
    from .registration import generate

    config, connectors = _load(args.config, need_tokens=False)
    out = Path(args.registration)
    generate(config, connectors, out, regenerate_tokens=args.regenerate)
    print(f"Wrote {out} and the tokens to {args.config}.")
    if not args.homeserver_config:
        print("Add it to your homeserver: see registration/README.md.")
        return 0
    hs_config = Path(args.homeserver_config)
    try:
        changes = add_bridge(hs_config, out, encryption=config.settings.encryption.allow)
    except HomeserverConfigError as e:
        print(f"Homeserver config not changed: {e}", file=sys.stderr)
        return 1
    for change in changes:
        print(f"{hs_config}: {change}")
    if changes:
        print("Restart the homeserver to load it.")
    else:
        print(f"{hs_config} already had all of it: not changed.")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    _load(args.config)
    print(f"{args.config}: OK")
    return 0


async def _migrate(config: Config) -> dict[str, int]:
    from .bridge import discover_connectors
    from .database.db import create_database, migrate, open_database, package_migrations
    from .instance_lock import InstanceLock

    url = str(config["database.url"])
    db = create_database(url)
    lock = InstanceLock()  # never migrate under a running bridge
    await open_database(db, url, lock)
    try:
        versions = {
            "bridgekit": await migrate(
                db, "bridgekit", package_migrations("bridgekit.database.migrations")
            )
        }
        connectors = discover_connectors()
        for name in config.enabled_networks():
            cls = connectors.get(name)
            if cls is None:
                continue
            migs = package_migrations(cls.__module__.rsplit(".", 1)[0] + ".migrations")
            if migs:
                versions[name] = await migrate(db, name, migs)
        return versions
    finally:
        await lock.release()
        await db.stop()


def cmd_migrate(args: argparse.Namespace) -> int:
    config, _ = _load(args.config)
    from .database.db import DatabaseUnavailable, SchemaTooNewError

    try:
        versions = asyncio.run(_migrate(config))
    except (SchemaTooNewError, DatabaseUnavailable) as e:
        print(f"Database error: {e}", file=sys.stderr)
        return 1
    for name, version in versions.items():
        print(f"{name} schema version: {version}")
    return 0


async def _run(config: Config) -> None:
    from .bridge import Bridge
    from .metrics import StatusServer

    bridge = Bridge(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await bridge.start()
    except Exception:
        # Release what the half-started bridge holds (database threads, the instance lock,
        # HTTP sessions): the process must end with the error, not hang on them.
        try:
            await bridge.stop()
        except Exception:
            logging.getLogger("bridgekit").debug("Cleaning up a failed start", exc_info=True)
        raise
    status = None
    if config.settings.metrics.enabled:
        status = StatusServer(
            bridge.metrics,
            bridge.status,
            lambda: {"inbox": bridge.inbox.pending, "outbox": bridge.outbox.pending},
        )
        await status.start(config.settings.metrics.hostname, config.settings.metrics.port)
    await stop.wait()
    logging.getLogger("bridgekit").info("Stopping")
    if status:
        await status.stop()
    await bridge.stop()


def run_loop(main: Coroutine[Any, Any, T], kind: str = "auto") -> T:
    """Run ``main`` on uvloop when it is installed (``auto``) or asked for, else on asyncio's
    own loop. uvloop's C loop spends less CPU per task, callback and socket write, which
    shows under load: on the IRC benchmark, up to a third less bridge CPU per message at 50
    msg/s and in bursts (a lone IRC->Matrix message costs the same, within the noise)."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    config, _ = _load(args.config)
    setup_logging(config)
    from .crypto.backend import CryptoError
    from .database.db import DatabaseUnavailable, SchemaTooNewError

    try:
        run_loop(_run(config), config.settings.bridge.event_loop)
    except (SchemaTooNewError, DatabaseUnavailable) as e:
        print(f"Database error: {e}", file=sys.stderr)
        return 1
    except CryptoError as e:  # the homeserver or the crypto database is not fit: said why
        print(f"End-to-bridge encryption cannot start: {e}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridgekit", description="Matrix bridges, done right.")
    parser.add_argument("--version", action="version", version=f"bridgekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("-c", "--config", default="config.yaml", help="path to config.yaml")
        return p

    gen = add("generate-registration", "write the homeserver registration and tokens")
    gen.add_argument("-r", "--registration", default="registration/bridgekit.yaml")
    gen.add_argument("--regenerate", action="store_true", help="make new tokens even if set")
    gen.add_argument(
        "--homeserver-config",
        metavar="PATH",
        help="also add the registration (and, with encryption.allow, the experimental "
        "features encryption needs) to this Synapse homeserver.yaml, keeping its comments",
    )
    gen.set_defaults(func=cmd_generate_registration)
    add("run", "run the bridge").set_defaults(func=cmd_run)
    add("check-config", "validate the config and exit").set_defaults(func=cmd_check_config)
    add("migrate", "apply database migrations and print the schema version").set_defaults(
        func=cmd_migrate
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return 130


__all__ = ["main", "build_parser", "Problem"]
