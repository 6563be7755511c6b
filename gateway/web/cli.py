"""``machimori web``: serve the HTTP API and pages alone, or set a staff password."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from edge.runtime import logs
from edge.runtime.config import ConfigError
from gateway.api.auth import check_user_name, set_password
from gateway.store.cli import with_config
from gateway.store.config import StoreConfig, load_config

EPILOG = """examples:
  machimori web passwd --config /etc/machimori/store.yaml staff01
  machimori web run --config /etc/machimori/store.yaml

`run` serves the river page (/), the staff page (/staff), the API (/api/v1, described at
/openapi.json) and the NGSI v2 view (/ngsi/v2/entities) from the database in the config, without
ingesting; `machimori store run` does both in one process. `passwd` adds or changes a staff login
in the config's staff.users_file (or --users-file); it asks for the password twice."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The city's web side: river page, staff page, API; and staff passwords.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{run,passwd}")
    run = sub.add_parser("run", help="serve HTTP only, until stopped", description="serve HTTP")
    run.add_argument("--config", required=True, type=Path, help="store config file (YAML)")
    run.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        help="override the config's log_level (default: warning, i.e. quiet)",
    )
    passwd = sub.add_parser(
        "passwd", help="add a staff login or change its password", description="set a password"
    )
    where = passwd.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="store config naming staff.users_file")
    where.add_argument("--users-file", type=Path, help="the users file itself")
    passwd.add_argument("user", help="login name (A-Z a-z 0-9 . _ -)")
    passwd.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (for scripts) instead of asking",
    )
    return parser


def main(argv: list[str], prog: str = "machimori web") -> int:
    args = _parser(prog).parse_args(argv)
    if args.action == "run":
        return with_config(args.config, args.log_level, _serve)
    try:
        users_file = args.users_file or load_config(args.config).staff.users_file
        check_user_name(args.user)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if users_file is None:
        print(f"error: {args.config}: staff.users_file is not set", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"new password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            print("error: the two passwords differ", file=sys.stderr)
            return 1
    if len(password) < 10:
        print("error: use at least 10 characters", file=sys.stderr)
        return 1
    set_password(users_file, args.user, password)
    print(f"{users_file}: password set for {args.user}")
    return 0


def _serve(config: StoreConfig) -> int:
    from gateway.store.service import StoreService

    StoreService(config, ingest=False, retention=False).run()
    return 0
