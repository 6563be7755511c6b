"""``machimori bus``: the city's card registry (issue, revoke, list passes) and a GTFS-JP feed
check for the office that prepares a feed before it is copied onto the buses."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

from edge.protocol.bus import RIDER_CATEGORIES, TECHS, card_hash
from edge.protocol.gtfs import Feed, GtfsError
from edge.runtime.config import ConfigError
from gateway.services.cards import CardRegistry
from gateway.store.config import load_config
from gateway.store.db import open_store

EPILOG = """examples:
  machimori bus cards issue --config /etc/machimori/store.yaml \\
      --secret-file /etc/machimori/card-secret --tech em4100 --uid 62E3086CED \\
      --category child --pass-type commuter --valid-from 2026-04-01 --valid-to 2027-03-31
  machimori bus cards revoke --config /etc/machimori/store.yaml \\
      --secret-file /etc/machimori/card-secret --tech em4100 --uid 62E3086CED
  machimori bus cards list --config /etc/machimori/store.yaml
  machimori bus gtfs-check /srv/gtfs/machimori-bus.zip --route M1 --date 2026-12-01

The card id read at the counter (printed on a 125 kHz tag, or shown by the desk reader) is hashed
with the city's card secret, the same file the buses hold; only the hash is stored. Exit status 2
means a wrong config file or argument (the message says which); 1 an unknown card or bad feed."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The city's buses: card registry and GTFS-JP feed check.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cards = sub.add_parser("cards", help="issue, revoke and list commuter passes")
    actions = cards.add_subparsers(dest="action", required=True)
    for name, text in (
        ("issue", "record a pass: the card's hash, rider category, pass type, validity"),
        ("revoke", "revoke a lost card: its later taps count as revoked"),
        ("list", "how many passes per category, and how many revoked"),
    ):
        p = actions.add_parser(name, help=text, description=text)
        p.add_argument("--config", required=True, type=Path, help="store config file (YAML)")
        if name == "list":
            continue
        p.add_argument("--secret-file", type=Path, help="the city's card secret (as on the buses)")
        p.add_argument("--tech", choices=TECHS, help="card technology (em4100: 125 kHz tag)")
        p.add_argument("--uid", help="the card id in hex, as the reader shows it")
        p.add_argument("--hash", help="the card's hash instead of secret, tech and uid")
        if name == "issue":
            p.add_argument("--category", required=True, choices=RIDER_CATEGORIES)
            p.add_argument("--pass-type", required=True, help="e.g. commuter, student, free")
            p.add_argument("--valid-from", required=True, type=date.fromisoformat)
            p.add_argument("--valid-to", required=True, type=date.fromisoformat)
    check = sub.add_parser("gtfs-check", help="load a GTFS-JP feed and say what it holds")
    check.add_argument("feed", type=Path, help="the feed's zip file or folder")
    check.add_argument("--route", help="also list this route's trips on --date")
    check.add_argument("--date", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    return parser


def _card(args: argparse.Namespace) -> str:
    if args.hash:
        return args.hash.lower()
    if not (args.secret_file and args.tech and args.uid):
        raise ValueError("give --hash, or --secret-file, --tech and --uid")
    try:
        secret = args.secret_file.read_bytes().strip()
        uid = bytes.fromhex(args.uid)
    except OSError as exc:
        raise ValueError(f"--secret-file {args.secret_file}: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"--uid {args.uid!r} is not hex") from None
    return card_hash(secret, args.tech, uid)


def _gtfs_check(args: argparse.Namespace) -> int:
    try:
        feed = Feed.load(args.feed)
    except GtfsError as exc:
        print(f"feed error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.feed}: ok — {len(feed.stops)} stops, {len(feed.routes)} routes, "
        f"{len(feed.trips)} trips, time zone {feed.agency_timezone}"
    )
    if args.route:
        if args.route not in feed.routes:
            print(f"route {args.route!r} is not in the feed", file=sys.stderr)
            return 1
        day = args.date or date.today()
        trips = feed.trips_on(args.route, day)
        print(f"  route {args.route} on {day}: {len(trips)} trips")
        for trip in trips:
            first, last = trip.stop_times[0], trip.stop_times[-1]
            print(
                f"    {trip.id:<12} {first.stop_id}→{last.stop_id} "
                f"{first.departure_s // 3600:02d}:{first.departure_s // 60 % 60:02d}"
            )
    return 0


def main(argv: list[str], prog: str = "machimori bus") -> int:
    args = _parser(prog).parse_args(argv)
    if args.command == "gtfs-check":
        return _gtfs_check(args)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    store = open_store(config.database, config.sqlite_sync)
    try:
        registry = CardRegistry(store)
        now_ms = int(time.time() * 1000)
        if args.action == "list":
            records = registry.all().values()
            by_category = Counter(r.category for r in records if r.revoked_ms is None)
            revoked = sum(1 for r in records if r.revoked_ms is not None)
            for category in RIDER_CATEGORIES:
                print(f"{category:<11} {by_category.get(category, 0)}")
            print(f"{'revoked':<11} {revoked}")
            return 0
        try:
            card = _card(args)
            if args.action == "issue":
                registry.issue(
                    card, args.category, args.pass_type, (args.valid_from, args.valid_to), now_ms
                )
                print(
                    f"issued: {card} ({args.category}, {args.pass_type}, "
                    f"{args.valid_from}..{args.valid_to})"
                )
                return 0
            if registry.revoke(card, now_ms):
                print(f"revoked: {card}")
                return 0
            print(f"unknown card: {card}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    finally:
        store.close()
