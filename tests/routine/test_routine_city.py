"""Four weeks of a small part of the city's children (``sim/city_children.py``), after three of
learning, through ``Replay`` — what a city checks before it turns the alerts on: each kind of
injected deviation told, soon, few alerts about nothing, none about the harmless novelties, and
fewer still once the guardians have answered "this is fine". Several seeds, none of them the
one the thresholds were looked at with (``bench/routine.py`` runs seed 1 and the whole city)."""

from __future__ import annotations

import io
import json
import statistics
from datetime import date, datetime, timedelta

import pytest

from gateway.services.routine_config import RoutineConfig
from gateway.services.routine_engine import RoutineEngine
from gateway.services.routine_replay import Replay
from sim.city_children import JST, City, Guardians, lat_lon

START = date(2026, 10, 5)
CHILDREN, DAYS, WARMUP = 60, 49, 21


def _engine(city: City) -> RoutineEngine:
    return RoutineEngine(
        RoutineConfig(), JST, lambda c, d: city.calendar.part(city.kids[int(c[1:])].school, d)
    )


def _raised(sink: io.StringIO, from_ms: int) -> list[tuple[int, int, str]]:
    out = []
    for line in sink.getvalue().splitlines():
        r = json.loads(line)
        ts = int(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")).timestamp() * 1000)
        if r["event"] == "raise" and ts >= from_ms:
            out.append((int(r["device"][1:]), ts, r["kind"]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_weeks_of_the_city_s_children_told_soon_and_rarely_for_nothing(seed):
    city = City(CHILDREN, START, DAYS, seed=seed, warmup_days=WARMUP)
    plain, answered = _engine(city), _engine(city)
    plain_out, answered_out = io.StringIO(), io.StringIO()
    guardians = Guardians(city, answered, answered_out)
    plain_replay = Replay(plain, plain_out)
    answered_replay = Replay(answered, guardians)
    for d in range(DAYS):
        for ts, i, x, y, acc in city.day(START + timedelta(days=d)):
            lat, lon = lat_lon(x, y)
            plain_replay.feed(f"c{i:04d}", ts, lat, lon, acc)
            guardians.until(ts)
            answered_replay.feed(f"c{i:04d}", ts, lat, lon, acc)
    judged_from = int(
        datetime.combine(START + timedelta(days=WARMUP), datetime.min.time(), JST).timestamp()
        * 1000
    )
    child_months = CHILDREN * (DAYS - WARMUP) / 30.44
    alerts = _raised(plain_out, judged_from)

    first: dict[object, int] = {}
    for i, ts, _ in sorted(alerts, key=lambda a: a[1]):
        d = city.deviation_of(i, ts)
        if d is not None:
            first.setdefault(d, ts)
    injected = [d for d in city.deviations if d.start_ms >= judged_from]
    for kind in ("place", "route", "late", "hour"):
        of_kind = [d for d in injected if d.kind == kind]
        told = [d for d in of_kind if d in first]
        # fifteen of a kind: "off the usual way" is the weakest (85-87 % in the bench, 11-13 of
        # 15 here)
        assert len(told) >= 0.7 * len(of_kind), (kind, len(told), len(of_kind))
    assert len(first) >= 0.9 * len(injected), (len(first), len(injected))
    delays = [(first[d] - d.start_ms) / 60_000 for d in injected if d in first]
    assert statistics.median(delays) < 10

    false = [a for a in alerts if city.deviation_of(a[0], a[1]) is None]
    # 55 child-months, the first week after the warm-up among them: at most 0.1 per child-month,
    # five or six alarms (bench/routine.py: 0.02-0.03 over 263 child-months; 0 to 2 here)
    assert len(false) / child_months <= 0.1, false
    novel = [
        a
        for a in false
        if any(n.child == a[0] and n.start_ms <= a[1] <= n.end_ms for n in city.novelties)
    ]
    assert novel == []  # a new friend's house on a Saturday, a school trip: never told
    after = _raised(answered_out, judged_from)
    false_after = [a for a in after if city.deviation_of(a[0], a[1]) is None]
    assert len(false_after) <= len(false)
    assert guardians.answered >= len(false_after) - 1  # each was answered (bar one too late)
