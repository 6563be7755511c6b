"""``machimori routine replay``: the learned-routine alerts offline.

It runs the very engine of the tracker service over a file of tracker envelopes and writes the
alerts it would have raised, so a city can tune ``routine:`` on its own history before switching
alerts on (and ``bench/routine.py`` measures with it). A guardian's "this is fine" is given on
the guardians' page, in the running service.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.runtime.config import ConfigError
from gateway.services.routine_config import RoutineConfig
from gateway.services.routine_engine import OUTING, RoutineEngine, week_part
from gateway.services.routine_replay import Replay
from gateway.services.school_calendar import SchoolCalendar

EPILOG = """examples:
  machimori routine replay --positions export.jsonl --out alerts.jsonl
  machimori routine replay --positions export.jsonl --out alerts.jsonl \\
      --config /etc/machimori/tracker.yaml --school nagai-chuo

replay: --positions is JSON lines of tracker envelopes as on MQTT (machimori/v1/tracker/+/
telemetry), any number of devices, in time order; each device counts as one child. Without
--config, the week-parts come from Japanese national holidays only; with it, from the school's
calendar (closed days, Saturday classes, outing days) and the config's `routine:` thresholds.
--out gets one JSON line per alert raised or cleared: device, ts, event, kind, reason (ja, en),
since, key. Progress goes to stderr every million lines."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Children's learned routines: replay a positions file offline.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
    replay = sub.add_parser("replay", help="alerts the engine would raise over a positions file")
    replay.add_argument("--positions", required=True, type=Path, help="JSON lines of envelopes")
    replay.add_argument("--out", required=True, type=Path, help="alerts, JSON lines ('-': stdout)")
    replay.add_argument("--config", type=Path, help="tracker service config: calendar, thresholds")
    replay.add_argument("--school", help="which school's calendar (default: the first)")
    replay.add_argument("--timezone", default="Asia/Tokyo")
    return parser


def main(argv: list[str], prog: str = "machimori routine") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        return _replay(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _replay(args: argparse.Namespace) -> int:
    calendar, routine, zone = SchoolCalendar(), RoutineConfig(), ZoneInfo(args.timezone)
    if args.config is not None:
        from gateway.services.tracker_config import load_config

        config = load_config(args.config)
        routine, zone = config.routine, ZoneInfo(config.timezone)
        school = config.school(args.school) if args.school else next(iter(config.schools), None)
        if args.school and school is None:
            raise ValueError(f"--school: no school {args.school!r} in {args.config}")
        if school is not None:
            calendar = school.calendar()

    def part_of(_: str, day) -> str:  # noqa: ANN001
        if day in calendar.outings:
            return OUTING
        return week_part(day, calendar.is_school_day(day), calendar.holiday_name(day) is not None)

    engine = RoutineEngine(routine, zone, part_of)
    out = sys.stdout if str(args.out) == "-" else args.out.open("w", encoding="utf-8")
    try:
        with args.positions.open(encoding="utf-8") as lines:
            replay = Replay(engine, out)
            counts = replay.feed_lines(_progress(lines))
    finally:
        if out is not sys.stdout:
            out.close()
    events = " ".join(f"{k}={v}" for k, v in sorted(counts.events.items())) or "none"
    print(
        f"{counts.positions} positions of {len(engine.children)} device(s); "
        f"skipped {counts.skipped}, rejected {counts.rejected}, out of order "
        f"{counts.out_of_order}; alerts: {events}",
        file=sys.stderr,
    )
    return 0


def _progress(lines):  # noqa: ANN001, ANN202
    for number, line in enumerate(lines, 1):
        if number % 1_000_000 == 0:
            print(f"... {number:,} lines", file=sys.stderr)
        yield line
