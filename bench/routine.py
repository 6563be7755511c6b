"""Learned-routine alerts on simulated months of the city's children, against two baselines.

    .venv/bin/python bench/routine.py                      # 200 children, 2 months (minutes)
    .venv/bin/python bench/routine.py --children 1200 --months 3   # the city (longer)
    .venv/bin/python bench/routine.py --seed 2 --dump false.jsonl  # and each false alarm

``sim/city_children.py`` plays every child's days; each position goes through the routine
engine by ``gateway.services.routine_replay.Replay`` (what ``machimori routine replay`` runs)
and, in the same run, through two baselines:

* **geofence**: fixed fences around home and school (150 m) with time windows — inside school
  08:30–14:30 on school days, at home 19:00–06:00 — alerting on two fixes outside a minute apart;
* **frequency**: a per-hour place-frequency model — how often the child was in each 200 m square
  at each hour of the day, learned from every fix — alerting on two fixes in a square seen on
  under 2 % of that hour's fixes.

A second learned engine runs beside the first with **guardians who answer**: every alert that
is not during an injected deviation gets "this is fine" (``RoutineEngine.feedback``) ten minutes
after it was raised, as a guardian who knows where the child is would answer; alerts during a
deviation get no answer. Its figures are labelled as such; the first engine gets no answers.

Prints, per kind of injected deviation, the share detected and the delay from its start to the
first alert (median, p90); false alarms per child-month (alerts outside every deviation, of
which during harmless novelties); the time to learn and update all models; memory per child.
Only days after the warm-up are judged (the models are silent before: cold start).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import pickle
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.services import routine_model  # noqa: E402
from gateway.services.routine_config import RoutineConfig  # noqa: E402
from gateway.services.routine_engine import RoutineEngine  # noqa: E402
from gateway.services.routine_replay import Replay  # noqa: E402
from sim.city_children import JST, SCHOOLS, City, Guardians, lat_lon  # noqa: E402

KINDS = ("place", "route", "late", "hour")


class Geofence:
    def __init__(self, city: City) -> None:
        self.city = city
        self.out: dict[int, int] = defaultdict(int)
        self.last_out: dict[int, int] = {}
        self.alerts: list[tuple[int, int]] = []

    def feed(self, i: int, ts: int, x: float, y: float, local: datetime) -> None:
        kid = self.city.kids[i]
        hour = local.hour + local.minute / 60
        fence = None
        if self.city.calendar.part(kid.school, local.date()) == "school" and 8.5 <= hour < 14.5:
            fence = SCHOOLS[kid.school]
        elif hour >= 19 or hour < 6:
            fence = kid.home
        if fence is None or math.dist((x, y), fence) <= 150:
            self.out.pop(i, None)
            self.last_out.pop(i, None)
            return
        if i in self.out:
            return  # this episode was told
        first = self.last_out.get(i)
        if first is None:
            self.last_out[i] = ts
        elif ts - first >= 60_000:
            self.out[i] = 1
            self.alerts.append((i, ts))


class Frequency:
    def __init__(self, warmup_ms: int) -> None:
        self.counts: dict[int, dict[tuple[int, int, int], int]] = defaultdict(dict)
        self.totals: dict[int, list[int]] = defaultdict(lambda: [0] * 24)
        self.warmup_ms = warmup_ms
        self.odd: dict[int, int] = {}
        self.told: set[int] = set()
        self.alerts: list[tuple[int, int]] = []

    def feed(self, i: int, ts: int, x: float, y: float, local: datetime) -> None:
        key = (local.hour, int(x // 200), int(y // 200))
        counts, totals = self.counts[i], self.totals[i]
        seen = counts.get(key, 0)
        if ts >= self.warmup_ms and totals[local.hour] >= 50:
            if seen / totals[local.hour] < 0.02:
                if i not in self.told:
                    if i in self.odd and ts - self.odd[i] >= 60_000:
                        self.told.add(i)
                        self.alerts.append((i, ts))
                    self.odd.setdefault(i, ts)
            else:
                self.odd.pop(i, None)
                self.told.discard(i)
        counts[key] = seen + 1
        totals[local.hour] += 1


def _ms(iso: str) -> int:
    return int(
        datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp() * 1000
    )


def evaluate(
    city: City, alerts: list[tuple[int, int, str]], eval_from: int, child_months: float
) -> dict:
    """Per kind: detected share and delays (min); false alarms per child-month."""
    by_child: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for i, ts, kind in alerts:
        if ts >= eval_from:
            by_child[i].append((ts, kind))
    result = {}
    windows: dict[int, list[tuple[int, int]]] = defaultdict(list)
    all_delays: list[float] = []
    for kind in KINDS:
        found, delays = 0, []
        devs = [d for d in city.deviations if d.kind == kind and d.start_ms >= eval_from]
        for d in devs:
            lo, hi = d.start_ms - 600_000, d.end_ms + 1_800_000
            windows[d.child].append((lo, hi))
            hits = [ts for ts, _ in by_child[d.child] if lo <= ts <= hi]
            if hits:
                found += 1
                delays.append(max(0.0, (min(hits) - d.start_ms) / 60_000))
                all_delays.append(delays[-1])
        result[kind] = {
            "injected": len(devs),
            "detected": found / len(devs) if devs else float("nan"),
            "median_min": statistics.median(delays) if delays else float("nan"),
            "p90_min": _p90(delays),
        }
    novel: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n in city.novelties:
        novel[n.child].append((n.start_ms, n.end_ms + 1_800_000))
    result["all"] = {"delays": all_delays}
    false, during_novelty = 0, 0
    false_kinds: dict[str, int] = defaultdict(int)
    for i, stamps in by_child.items():
        for ts, kind in stamps:
            if any(lo <= ts <= hi for lo, hi in windows[i]):
                continue
            false += 1
            false_kinds[kind] += 1
            during_novelty += any(lo <= ts <= hi for lo, hi in novel[i])
    result["false_per_child_month"] = false / child_months
    result["false"] = false
    result["false_by_kind"] = dict(false_kinds)
    result["false_novelty"] = during_novelty
    return result


def _raised(sink: io.StringIO) -> list[tuple[int, int, str]]:
    records = (json.loads(line) for line in sink.getvalue().splitlines())
    return [
        (int(r["device"][1:]), _ms(r["ts"]), r["kind"]) for r in records if r["event"] == "raise"
    ]


def dump_false(city: City, sink: io.StringIO, eval_from: int, out: Path) -> None:
    """Every false alarm of the unanswered engine, one JSON line each: the child, its local
    time, week-part, the day's planned event (deviation or novelty), its reason."""
    lines = []
    for line in sink.getvalue().splitlines():
        r = json.loads(line)
        i, ts = int(r["device"][1:]), _ms(r["ts"])
        if r["event"] != "raise" or ts < eval_from or city.deviation_of(i, ts) is not None:
            continue
        local = datetime.fromtimestamp(ts / 1000, JST)
        kid = city.kids[i]
        record = {
            "child": i,
            "local": f"{local:%a %Y-%m-%d %H:%M}",
            "kind": r["kind"],
            "part": city.calendar.part(kid.school, local.date()),
            "event": city.plan.get((i, local.date())),
            "reason": r["reason"]["en"],
        }
        lines.append(json.dumps(record))
    out.write_text("\n".join(lines) + "\n")


def _kinded(alerts: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    return [(i, ts, "-") for i, ts in alerts]


def _p90(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--months", type=float, default=2.0)
    parser.add_argument("--start", default="2026-10-05", help="first simulated day (a Monday)")
    parser.add_argument("--warmup-days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool-weekends", action="store_true", help="routine: pool_weekends")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--dump", type=Path, help="write the learned engine's false alarms here")
    args = parser.parse_args()
    days = int(round(args.months * 30.44))
    start = date.fromisoformat(args.start)
    city = City(args.children, start, days, seed=args.seed, warmup_days=args.warmup_days)
    config = RoutineConfig(pool_weekends=args.pool_weekends)
    engine = RoutineEngine(
        config, JST, lambda c, d: city.calendar.part(city.kids[int(c[1:])].school, d)
    )
    sink = io.StringIO()
    replay = Replay(engine, sink)
    answered = RoutineEngine(
        config, JST, lambda c, d: city.calendar.part(city.kids[int(c[1:])].school, d)
    )
    answered_sink = io.StringIO()
    guardians = Guardians(city, answered, answered_sink)
    answered_replay = Replay(answered, guardians)
    eval_from = int(
        datetime.combine(
            start + timedelta(days=args.warmup_days), datetime.min.time(), JST
        ).timestamp()
        * 1000
    )
    geofence, frequency = Geofence(city), Frequency(eval_from)
    rebuild_s = [0.0]
    original = routine_model.ChildModel.rebuild

    def timed(self, today):  # noqa: ANN001, ANN202
        t0 = time.process_time()
        original(self, today)
        rebuild_s[0] += time.process_time() - t0

    routine_model.ChildModel.rebuild = timed  # type: ignore[method-assign]
    sim_s = model_s = base_s = 0.0
    positions = 0
    names = [f"c{i:04d}" for i in range(args.children)]
    for d in range(days):
        day = start + timedelta(days=d)
        t0 = time.process_time()
        fixes = city.day(day)
        t1 = time.process_time()
        sim_s += t1 - t0
        for ts, i, x, y, acc in fixes:
            lat, lon = lat_lon(x, y)
            replay.feed(names[i], ts, lat, lon, acc)
        t2 = time.process_time()
        model_s += t2 - t1
        for ts, i, x, y, acc in fixes:
            guardians.until(ts)
            lat, lon = lat_lon(x, y)
            answered_replay.feed(names[i], ts, lat, lon, acc)
        t2 = time.process_time()
        for ts, i, x, y, _ in fixes:
            local = datetime.fromtimestamp(ts / 1000, JST)
            geofence.feed(i, ts, x, y, local)
            frequency.feed(i, ts, x, y, local)
        base_s += time.process_time() - t2
        positions += len(fixes)
        print(f"\rday {d + 1}/{days}: {positions:,} positions", end="", file=sys.stderr)
    print(file=sys.stderr)
    eval_days = days - args.warmup_days
    child_months = args.children * eval_days / 30.44
    results = {
        "routine (learned)": evaluate(city, _raised(sink), eval_from, child_months),
        "routine + answers": evaluate(city, _raised(answered_sink), eval_from, child_months),
        "geofence baseline": evaluate(city, _kinded(geofence.alerts), eval_from, child_months),
        "frequency baseline": evaluate(city, _kinded(frequency.alerts), eval_from, child_months),
    }
    sizes = [len(pickle.dumps(s, protocol=5)) for s in engine.children.values()]
    figures = {
        "children": args.children,
        "days": days,
        "warmup_days": args.warmup_days,
        "child_months_judged": round(child_months, 1),
        "positions": positions,
        "sim_s": round(sim_s, 1),
        "routine_s": round(model_s, 1),
        "routine_positions_per_s": round(positions / model_s),
        "daily_update_all_s": round(
            rebuild_s[0] / max(1, days - 1) * args.children / max(1, len(engine.children)), 3
        ),
        "baselines_s": round(base_s, 1),
        "state_bytes_per_child": round(statistics.mean(sizes)),
        "results": results,
    }
    print(
        f"\n{args.children} children, {days} days ({args.warmup_days} warm-up), "
        f"{child_months:.0f} child-months judged, {positions:,} positions, seed {args.seed}\n"
    )
    print(f"{'method':<20} {'kind':<6} {'injected':>8} {'detected':>9} {'median':>8} {'p90':>8}")
    for method, r in results.items():
        for kind in KINDS:
            k = r[kind]
            print(
                f"{method:<20} {kind:<6} {k['injected']:>8} {k['detected']:>8.0%} "
                f"{k['median_min']:>6.1f}m {k['p90_min']:>6.1f}m"
            )
        all_found = sum(r[k]["detected"] * r[k]["injected"] for k in KINDS)
        all_injected = sum(r[k]["injected"] for k in KINDS)
        delays = r["all"].pop("delays")
        r["all"].update(median_min=statistics.median(delays) if delays else float("nan"))
        print(
            f"{method:<20} {'all':<6} {all_injected:>8} {all_found / max(1, all_injected):>8.0%} "
            f"{r['all']['median_min']:>6.1f}m {_p90(delays):>6.1f}m"
        )
        kinds = "".join(f" {k} {n}," for k, n in sorted(r["false_by_kind"].items()) if k in KINDS)
        print(
            f"{'':<20} false alarms {r['false_per_child_month']:.3f} per child-month "
            f"({r['false']}:{kinds} {r['false_novelty']} of them during harmless novelties)"
        )
    learned, _, fence, freq = (results[m]["false_per_child_month"] for m in results)
    print(
        f'\nroutine + answers: the same engine, its guardians answering "this is fine" to each of'
        f" its {guardians.answered} false alarms 10 min after it (the first engine gets no answers)"
    )
    print(
        f"\nfalse alarms, ratio to the learned model: geofence {fence / max(learned, 1e-9):.1f}x,"
        f" frequency {freq / max(learned, 1e-9):.1f}x"
    )
    print(
        f"routine engine: {figures['routine_positions_per_s']:,} positions/s on one core "
        f"({model_s:.0f} s for all); daily update of all {args.children} models "
        f"{figures['daily_update_all_s']:.2f} s; state {figures['state_bytes_per_child']:,} "
        f"bytes per child (pickled); simulation {sim_s:.0f} s, baselines {base_s:.0f} s"
    )
    print("goals: >= 90 % detected, median < 10 min, <= 0.05 false alarms per child-month")
    if args.dump:
        dump_false(city, sink, eval_from, args.dump)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
