"""``machimori store``: run the city store (MQTT ingest, retention, HTTP API and pages), check its
config, purge by retention, or see what it holds."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from edge.runtime import logs
from edge.runtime.config import ConfigError
from gateway.store.config import StoreConfig, load_config
from gateway.store.db import open_store, redact

EPILOG = """examples:
  machimori store check --config /etc/machimori/store.yaml
  machimori store run --config /etc/machimori/store.yaml
  machimori store status --config /etc/machimori/store.yaml
  machimori store purge --config /etc/machimori/store.yaml

`run` subscribes to machimori/v1/# on the broker, stores every message (SQLite or PostgreSQL, as
the config's `database` says), applies retention every hour, and serves the river page, the staff
page and the API (http.host:http.port). Set a staff password first with `machimori web passwd`.
Exit status 2 means the config file is wrong: the message names the file, the key and what was
expected; 1 means the database or broker could not be used."""

ACTIONS = {
    "run": "ingest + retention + HTTP, until stopped (SIGTERM/Ctrl-C stop it cleanly)",
    "ingest": "one more ingest worker only (needs ingest.shared_group in the config)",
    "check": "validate the config, open the database, print what would run, exit",
    "purge": "apply the retention rules once, now, and print what was deleted",
    "status": "print devices (with measured loss) and rejected messages, then exit",
}


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The city store: MQTT ingest, storage, retention, HTTP API and pages.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{" + ",".join(ACTIONS) + "}")
    for action, text in ACTIONS.items():
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("--config", required=True, type=Path, help="store config file (YAML)")
        p.add_argument(
            "--log-level",
            choices=logs.LEVELS,
            help="override the config's log_level (default: warning, i.e. quiet)",
        )
        if action == "ingest":
            p.add_argument(
                "--worker", type=int, default=1, help="worker number, part of its MQTT client id"
            )
    return parser


def main(argv: list[str], prog: str = "machimori store") -> int:
    args = _parser(prog).parse_args(argv)
    return with_config(
        args.config, args.log_level, lambda config: ACTIONS_RUN[args.action](config, args)
    )


def with_config(path: Path, log_level: str | None, action: Callable[[StoreConfig], int]) -> int:
    """Load the config and run ``action`` on it; a technician gets one clear line for a wrong
    config (exit 2) or an unusable database (exit 1), never a traceback."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    logs.setup(log_level or config.log_level)
    try:
        return action(config)
    except ConfigError as exc:  # e.g. the sites file named by the config
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("psycopg", "psycopg_pool", "sqlite3"):
            print(f"database error ({redact(config.database)}): {exc}", file=sys.stderr)
            return 1
        raise


def _run(config: StoreConfig, args: argparse.Namespace) -> int:
    from gateway.store.service import StoreService

    StoreService(config, config_path=args.config.resolve()).run()
    return 0


def _ingest(config: StoreConfig, args: argparse.Namespace) -> int:
    from gateway.store.service import StoreService

    if config.ingest.shared_group is None:
        print(
            f"config error: {args.config}: ingest.shared_group: expected a group name, so "
            "workers split the stream instead of each storing all of it",
            file=sys.stderr,
        )
        return 2
    StoreService(config, http=False, retention=False, worker=args.worker).run()
    return 0


def _check(config: StoreConfig, args: argparse.Namespace) -> int:
    from gateway.api.sites import load_sites_file

    places = load_sites_file(config.sites_file)
    store = open_store(config.database, config.sqlite_sync)
    store.close()
    mqtt, ingest = config.mqtt, config.ingest
    print(f"{args.config}: ok")
    print(f"  database   {redact(config.database)} ({store.name}, reachable)")
    print(f"  broker     {mqtt.host}:{mqtt.port} as {mqtt.username or '(anonymous)'}")
    group = f"shared group {ingest.shared_group}" if ingest.shared_group else "not shared"
    print(f"  ingest     {'on' if ingest.enabled else 'off'}, {ingest.workers} worker(s), {group}")
    http = config.http
    print(f"  http       {'http://' + http.host + ':' + str(http.port) if http.enabled else 'off'}")
    print(
        f"  sites      {len(places.sites)} river site(s), {len(places.cameras)} camera(s) "
        f"from {config.sites_file or '(none)'}"
    )
    ngsi = config.ngsi
    tokens = ngsi.tokens_file or "none (staff only)"
    print(
        f"  ngsi       tenant {ngsi.service or '(default)'}, path {ngsi.service_path}; "
        f"subscriptions in {config.subscriptions_file}; tokens {tokens}"
    )
    print(f"  open data  {http.licence} ({http.licence_url}); CORS {', '.join(http.cors_origins)}")
    print(f"  images     {config.images_dir}")
    kept = ", ".join(f"{k} {d:g} d" for k, d in sorted(config.retention.days.items()))
    print(f"  retention  {kept} (0 = for ever)")
    users = config.staff.users_file
    if users is None or not users.exists():
        print("  staff      no users file yet: run `machimori web passwd` to allow a login")
    return 0


def _purge(config: StoreConfig, args: argparse.Namespace) -> int:
    from edge.runtime.clock import Clock
    from gateway.store.images import ImageFiles
    from gateway.store.intake import to_ms
    from gateway.store.retention import purge

    store = open_store(config.database, config.sqlite_sync)
    try:
        removed = purge(
            store, ImageFiles(config.images_dir), config.retention, to_ms(Clock().now())
        )
    finally:
        store.close()
    for name, count in removed.items():
        print(f"  {name:<16} {count} deleted")
    return 0


def _status(config: StoreConfig, args: argparse.Namespace) -> int:
    from gateway.store.intake import iso_ms

    store = open_store(config.database, config.sqlite_sync)
    try:
        devices, rejected = store.devices(), store.rejection_counts()
    finally:
        store.close()
    head = ("device", "kind", "state", "received", "lost", "dups")
    print("{:<16} {:<8} {:<8} {:>9} {:>6} {:>6}  last heard".format(*head))
    for d in devices:
        print(
            f"{d.device:<16} {d.kind:<8} {d.status_state or '-':<8} {d.received:>9} "
            f"{d.lost:>6} {d.duplicates:>6}  {iso_ms(d.last_seen_ms)}"
        )
    print(f"{len(devices)} device(s)")
    for reason, (count, last) in rejected.items():
        print(f"rejected {reason:<16} {count:>8}  last {iso_ms(last)}")
    if not rejected:
        print("no rejected messages")
    return 0


ACTIONS_RUN = {
    "run": _run,
    "ingest": _ingest,
    "check": _check,
    "purge": _purge,
    "status": _status,
}
