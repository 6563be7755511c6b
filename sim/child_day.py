"""A child's school day as positions over time: home → school → after-school club → home.

Places and street corners are in Nagai (the model city); a walk follows its corners at a child's
pace. What a receiver would make of it is described per moment by ``Sky``: indoors there is no
fix (a tracker in a school bag in a concrete building), near tall buildings reflected signals
(multipath) pull a fix tens of metres off while the receiver still reports a good HDOP — the case
that makes a naive geofence flap — and elsewhere a fix jitters by a few metres. The sequence is
seeded, so a test's day is the same every run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
Point = tuple[float, float]
M_PER_DEG_LAT = 111_195.0

# Nagai, Yamagata: an elementary school, homes to its south and east, a club near the station.
SCHOOL = (38.10790, 140.03270)
CLUB = (38.10350, 140.04080)
HOMES = [
    (38.10010, 140.03020),
    (38.10200, 140.04400),
    (38.11300, 140.02900),
    (38.09800, 140.03900),
]


@dataclass(frozen=True)
class Sky:
    """What a receiver sees at one moment: a position to report, or none."""

    lat: float
    lon: float
    fix: bool
    hdop: float
    satellites: int


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    path: tuple[tuple[float, float], ...]  # one point: a stay; more: a walk
    indoors: bool = False

    def at(self, moment: datetime) -> tuple[float, float]:
        if len(self.path) == 1:
            return self.path[0]
        share = (moment - self.start) / (self.end - self.start)
        legs = list(zip(self.path, self.path[1:], strict=False))
        lengths = [_metres(a, b) for a, b in legs]
        target = max(0.0, min(1.0, share)) * sum(lengths)
        for (a, b), length in zip(legs, lengths, strict=True):
            if target <= length and length > 0:
                f = target / length
                return (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
            target -= length
        return self.path[-1]


class ChildDay:
    """One child's day in segments, with seeded receiver behaviour.

    ``cold_start_s``: the receiver has no fix for this long after ``day`` starts being played.
    ``late_min``: the child leaves home this much later (the late-child scenario).
    ``absent``: the child stays home all day (ill).
    """

    def __init__(
        self,
        day: date,
        home: tuple[float, float],
        *,
        school: tuple[float, float] = SCHOOL,
        club: tuple[float, float] | None = CLUB,
        leave_home: time = time(7, 35),
        school_ends: time = time(15, 0),
        club_ends: time = time(17, 0),
        late_min: float = 0.0,
        absent: bool = False,
        speed_mps: float = 1.1,
        seed: int = 0,
    ) -> None:
        self.rng = random.Random(seed)
        self.cold_until: datetime | None = None
        start = datetime.combine(day, time(0, 0), tzinfo=JST)
        end = start + timedelta(days=1)
        self.segments: list[Segment] = []
        now = start
        if absent:
            self.segments.append(Segment(start, end, (home,), indoors=True))
            return
        leave = datetime.combine(day, leave_home, tzinfo=JST) + timedelta(minutes=late_min)
        now = self._stay(now, leave, home, indoors=True)
        now = self._walk(now, home, school, speed_mps)
        now = self._stay(now, now + timedelta(minutes=3), school)  # the gate and the yard
        ends = datetime.combine(day, school_ends, tzinfo=JST)
        now = self._stay(now, max(ends, now), school, indoors=True)
        if club is not None:
            now = self._walk(now, school, club, speed_mps)
            clubs = datetime.combine(day, club_ends, tzinfo=JST)
            now = self._stay(now, max(clubs, now), club, indoors=True)
            now = self._walk(now, club, home, speed_mps)
        else:
            now = self._walk(now, school, home, speed_mps)
        self._stay(now, end, home, indoors=True)

    def _stay(self, start: datetime, end: datetime, where: Point, **kw: bool) -> datetime:
        self.segments.append(Segment(start, end, (where,), **kw))
        return end

    def _walk(self, start: datetime, a: Point, b: Point, speed: float) -> datetime:
        corner = (a[0], b[1])  # along the street grid: first east-west, then north-south
        path = (a, corner, b)
        seconds = sum(_metres(p, q) for p, q in zip(path, path[1:], strict=False)) / speed
        end = start + timedelta(seconds=seconds)
        self.segments.append(Segment(start, end, path))
        return end

    def truth(self, moment: datetime) -> tuple[float, float, bool]:
        """Where the child really is, and whether indoors."""
        for segment in self.segments:
            if segment.start <= moment < segment.end:
                lat, lon = segment.at(moment)
                return lat, lon, segment.indoors
        lat, lon = self.segments[-1].path[-1]
        return lat, lon, self.segments[-1].indoors

    def sky(self, moment: datetime) -> Sky:
        """What the receiver reports at ``moment`` (UTC or aware)."""
        lat, lon, indoors = self.truth(moment)
        if indoors or (self.cold_until is not None and moment < self.cold_until):
            return Sky(lat, lon, False, 99.9, 0)
        hdop = round(self.rng.uniform(0.7, 1.6), 2)
        sigma = hdop * 2.5
        near_buildings = _metres((lat, lon), SCHOOL) < 150 or _metres((lat, lon), CLUB) < 100
        if near_buildings and self.rng.random() < 0.15:
            sigma = 25.0  # a reflected signal: far off, and the HDOP does not show it
        dlat = self.rng.gauss(0, sigma) / M_PER_DEG_LAT
        dlon = self.rng.gauss(0, sigma) / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
        return Sky(lat + dlat, lon + dlon, True, hdop, self.rng.randint(6, 12))

    def cold_start(self, moment: datetime, seconds: float = 35.0) -> None:
        """No fix for ``seconds`` from ``moment``: the receiver was just powered."""
        self.cold_until = moment.astimezone(UTC) + timedelta(seconds=seconds)


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (b[0] - a[0]) * M_PER_DEG_LAT
    dlon = (b[1] - a[1]) * M_PER_DEG_LAT * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)
