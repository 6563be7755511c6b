"""``machimori tracker``: run the tracker service, and manage who may see which child.

Every command takes the service's config (``--config``), which names the database. Registry
commands take effect at once in a running service (a revoked link refuses the next request).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edge.protocol.topics import TopicError, check_device_id
from edge.runtime import logs
from edge.runtime.config import ConfigError
from gateway.api.auth import check_user_name, hash_password
from gateway.services.phones import new_token
from gateway.services.tracker_config import TrackerServiceConfig, load_config
from gateway.services.tracker_db import TrackerDb

EPILOG = """examples:
  machimori tracker check --config /etc/machimori/tracker.yaml
  machimori tracker child add --config tracker.yaml hana-2031 --school nagai-chuo
  machimori tracker device add --config tracker.yaml tracker-0042 --child hana-2031
  machimori tracker device add --config tracker.yaml phone-hana --child hana-2031 --kind owntracks
  machimori tracker guardian add --config tracker.yaml sato01 --email sato@example.jp
  machimori tracker link --config tracker.yaml sato01 hana-2031
  machimori tracker unlink --config tracker.yaml sato01 hana-2031     (at once, shares too)
  machimori tracker staff add --config tracker.yaml kyoto01 --school nagai-chuo
  machimori tracker audit --config tracker.yaml --child hana-2031
  machimori tracker run --config /etc/machimori/tracker.yaml

Children are known by an id the city chooses (no names). A phone device (--kind owntracks or
osmand) gets a token printed once: put it in the phone's app (OwnTracks: password; Traccar
Client: add ?key=TOKEN to the server URL). `guardian add` and `staff add` ask for a password
(or read it with --password-stdin)."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Child trackers on the city side: school arrivals, guardians' page, registry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--config", required=True, type=Path, help="tracker service config (YAML)")
        return p

    run = command("run", "run the service until stopped (MQTT in, alerts out, pages)")
    run.add_argument("--log-level", choices=logs.LEVELS, help="override the config's log_level")
    command("check", "check the config file and the database, then exit")
    child = command("child", "add or remove a child (remove deletes every position at once)")
    child.add_argument("what", choices=["add", "remove"])
    child.add_argument("child", help="the child's id (a-z 0-9 -), never a name")
    child.add_argument("--school", help="the school id from the config (for add)")
    device = command("device", "register a tracker or a phone for a child")
    device.add_argument("what", choices=["add"])
    device.add_argument("device", help="device id (its MQTT user; for OwnTracks, the topic user)")
    device.add_argument("--child", required=True)
    device.add_argument("--kind", choices=["tracker", "owntracks", "osmand"], default="tracker")
    guardian = command("guardian", "add a guardian (or change their e-mail or password)")
    guardian.add_argument("what", choices=["add"])
    guardian.add_argument("guardian", help="login id (A-Z a-z 0-9 . _ -)")
    guardian.add_argument("--email", help="where notices go")
    guardian.add_argument("--lang", choices=["ja", "en"], default="ja")
    guardian.add_argument("--password-stdin", action="store_true")
    staff = command("staff", "add a member of a school's staff (sees arrivals, not positions)")
    staff.add_argument("what", choices=["add"])
    staff.add_argument("staff", help="login id (A-Z a-z 0-9 . _ -)")
    staff.add_argument("--school", required=True)
    staff.add_argument("--password-stdin", action="store_true")
    for name, text in (("link", "let a guardian see a child"), ("unlink", "revoke it, at once")):
        p = command(name, text)
        p.add_argument("guardian")
        p.add_argument("child")
    audit = command("audit", "who viewed which child's position, newest first")
    audit.add_argument("--child")
    audit.add_argument("--limit", type=int, default=100)
    command("purge", "apply retention now (it also runs hourly inside `run`)")
    return parser


def main(argv: list[str], prog: str = "machimori tracker") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.action == "run":
        logs.setup(args.log_level or config.log_level)
        from gateway.services.tracker_service import TrackerService

        TrackerService(config).run()
        return 0
    db = TrackerDb(config.database)
    try:
        return ACTIONS[args.action](config, db, args)
    except (ValueError, TopicError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _password(args: argparse.Namespace, who: str) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {who}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
    if len(password) < 10:
        raise ValueError("use at least 10 characters")
    return password


def _check(config: TrackerServiceConfig, db: TrackerDb, _: argparse.Namespace) -> int:
    print(f"config ok: {len(config.schools)} school(s); database {config.database}")
    print(f"notifications: {db.notification_counts()}")
    return 0


def _child(config: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    check_device_id(args.child)
    if args.what == "remove":
        db.remove_child(args.child)
        print(f"removed {args.child} and all of its positions")
        return 0
    if args.school is None or config.school(args.school) is None:
        known = ", ".join(s.id for s in config.schools) or "none configured"
        raise ValueError(f"--school: one of the config's schools ({known})")
    db.add_child(args.child, args.school, _now_ms())
    print(f"child {args.child} at {args.school}")
    return 0


def _device(config: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    check_device_id(args.device)
    token, digest = new_token() if args.kind != "tracker" else (None, None)
    if not any(c == args.child for c in _children(config, db)):
        raise ValueError(f"--child: no child {args.child!r}; add it first")
    db.add_device(args.device, args.child, args.kind, digest)
    print(f"device {args.device} ({args.kind}) for {args.child}")
    if token is not None:
        print(f"token (shown once, keep it in the phone only): {token}")
    return 0


def _children(config: TrackerServiceConfig, db: TrackerDb) -> list[str]:
    return [c for s in config.schools for c in db.children_at(s.id)]


def _guardian(_: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    check_user_name(args.guardian)
    existing = db.guardian(args.guardian)
    password = None if existing and not args.password_stdin else _password(args, args.guardian)
    db.add_guardian(args.guardian, args.email, args.lang, password and hash_password(password))
    print(f"guardian {args.guardian}")
    return 0


def _staff(config: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    check_user_name(args.staff)
    if config.school(args.school) is None:
        raise ValueError(f"--school: no school {args.school!r} in the config")
    db.add_staff(args.staff, args.school, hash_password(_password(args, args.staff)))
    print(f"staff {args.staff} at {args.school}")
    return 0


def _link(_: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    if db.guardian(args.guardian) is None:
        raise ValueError(f"no guardian {args.guardian!r}")
    db.link(args.guardian, args.child, _now_ms())
    print(f"{args.guardian} may see {args.child}")
    return 0


def _unlink(_: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    removed = db.unlink(args.guardian, args.child)
    print(f"{args.guardian} may no longer see {args.child}" if removed else "no such link")
    return 0 if removed else 1


def _audit(_: TrackerServiceConfig, db: TrackerDb, args: argparse.Namespace) -> int:
    for ts_ms, viewer, child, what in db.audit(args.child, args.limit):
        moment = datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="seconds")
        print(f"{moment}\t{viewer}\t{child}\t{what}")
    return 0


def _purge(config: TrackerServiceConfig, db: TrackerDb, _: argparse.Namespace) -> int:
    removed = db.purge(config.retention, _now_ms())
    print(" ".join(f"{k}={v}" for k, v in removed.items()))
    return 0


ACTIONS: dict[str, Callable[[TrackerServiceConfig, TrackerDb, argparse.Namespace], int]] = {
    "check": _check,
    "child": _child,
    "device": _device,
    "guardian": _guardian,
    "staff": _staff,
    "link": _link,
    "unlink": _unlink,
    "audit": _audit,
    "purge": _purge,
}
