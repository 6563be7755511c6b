"""Hand-made children's days for the routine tests: stays and straight walks in metres around a
home, turned into the fixes a tracker would send (every 50 m walked; indoors only the fix where
a walk ended; outdoors one every 15 min)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from gateway.services.routine_config import RoutineConfig
from gateway.services.routine_engine import RoutineEngine, RoutineEvent, week_part
from gateway.services.tracker_db import TrackerDb
from sim.city_children import JST, lat_lon

HOME = (0.0, 0.0)
SCHOOL = (0.0, 1000.0)
CLUB = (300.0, 1000.0)
SPEED = 1.1


@dataclass
class Day:
    """One child's day, built in order: ``stay`` then ``walk`` then ``stay``..."""

    day: date
    at: tuple[float, float] = HOME
    t: float = 0.0  # seconds after midnight
    fixes: list[tuple[int, float, float]] = field(default_factory=list)

    def ms(self, seconds: float) -> int:
        return int(datetime.combine(self.day, time(0), JST).timestamp() * 1000 + seconds * 1000)

    def stay(self, until: str | float, indoors: bool = True) -> Day:
        end = until if isinstance(until, float) else _seconds(until)
        self._fix(self.t + 90, self.at)
        if not indoors:
            t = self.t + 900
            while t < end:
                self._fix(t, self.at)
                t += 900
        self.t = max(self.t, end)
        return self

    def walk(self, *points: tuple[float, float], lost: bool = False) -> Day:
        for to in points:
            length = math.dist(self.at, to)
            steps = int(length // 50)
            for k in range(1, steps + 1):
                f = k * 50 / length
                p = (self.at[0] + (to[0] - self.at[0]) * f, self.at[1] + (to[1] - self.at[1]) * f)
                if not lost:
                    self._fix(self.t + k * 50 / SPEED, p)
            self.t += length / SPEED
            self.at = to
        if lost:
            self._fix(self.t, self.at)  # the fix comes back at the door
        return self

    def _fix(self, t: float, p: tuple[float, float]) -> None:
        if t < 86400:
            self.fixes.append((self.ms(t), p[0], p[1]))


def _seconds(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return int(h) * 3600 + int(m) * 60.0


def school_day(day: date, *, home_by: str | None = None) -> Day:
    """Home → school (leave 07:40) → club until 17:00 → home."""
    d = Day(day).stay("07:40").walk((0.0, 1000.0))
    d.stay("15:00").walk(CLUB).stay("17:00").walk((0.0, 1000.0), HOME)
    return d.stay("23:59")


def evening_out(
    day: date, leave: str, to: tuple[float, float], until: str, *, indoors: bool = False
) -> Day:
    """A usual school day, but at ``leave`` she walks out to ``to``, stays until ``until`` and
    walks home."""
    d = school_day(day)
    d.fixes = [f for f in d.fixes if f[0] < d.ms(_seconds(leave))]
    d.t = _seconds(leave)
    return d.walk(to).stay(until, indoors=indoors).walk(HOME).stay("23:59")


def free_day(day: date) -> Day:
    """Home all day, but a morning walk to the park and back."""
    return (
        Day(day)
        .stay("10:00")
        .walk((-400.0, 0.0))
        .stay("11:00", indoors=False)
        .walk(HOME)
        .stay("23:59")
    )


def engine(config: RoutineConfig | None = None) -> RoutineEngine:
    def part_of(_: str, day: date) -> str:
        return week_part(day, day.weekday() < 5, False)

    return RoutineEngine(config or RoutineConfig(), JST, part_of)


def feed(eng: RoutineEngine, days: list[Day], child: str = "hana") -> list[RoutineEvent]:
    """Each fix in order, and the clock's look every minute between them (as the service's)."""
    events: list[RoutineEvent] = []
    for d in days:
        clock = d.ms(0)
        for ts, x, y in d.fixes:
            while clock + 60_000 < ts:
                clock += 60_000
                events += eng.tick(clock)
            events += eng.tick(ts)
            lat, lon = lat_lon(x, y)
            events += eng.observe(child, ts, lat, lon, 6.0)
        events += eng.tick(d.ms(86399))
    return events


def routine(first: date, weeks: int) -> list[Day]:
    """``weeks`` of the usual: school days and quiet weekends."""
    days = []
    for n in range(weeks * 7):
        day = first + timedelta(days=n)
        days.append(school_day(day) if day.weekday() < 5 else free_day(day))
    return days


def history(db: TrackerDb, today: date, device: str, weeks: int = 4) -> None:
    """``weeks`` of her usual days up to the Sunday before ``today``, stored as the tracker
    service stores positions."""
    rows = []
    for day in routine(today - timedelta(days=weeks * 7 + 1), weeks):
        for ts, x, y in day.fixes:
            lat, lon = lat_lon(x, y)
            rows.append(("hana", ts, device, ts, round(lat, 5), round(lon, 5), 6.0, "gnss"))
    with db.tx() as cur:
        db.insert_positions(cur, rows)
