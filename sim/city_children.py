"""The city's children over months: the positions their trackers would send, with labelled
deviations and harmless novelties, for ``bench/routine.py`` and the routine tests.

Nagai's street grid (100 m blocks) holds six elementary schools; each child has a home within
1.5 km of its school, and some of: an after-school club near the school (weekdays to 17:00 or
18:00), cram school one evening a week, a Saturday-morning sports club, a park near home,
grandparents, two friends' houses. A school day is home → school → (club | cram | park) → home
at the child's own times (± a few minutes a day), along the grid (mostly the child's usual
way, sometimes the parallel street); weekends and holidays are home, park, friends,
grandparents, the sports club and family car trips. Days off: Japanese national holidays, the
winter and spring breaks, a few days ill.

A tracker's view of it follows the agent's own reporting policy (``edge.agents.tracker``'s
``ReportingConfig`` defaults, read from there): walking inside the weekday school windows, a
look every 15 s and a position each time the child is 20 m from the last one sent; elsewhere a
look every 30 s and a position every 50 m, the first look of a walk up to 2 min after leaving
(the still pace); in a car every look; standing outdoors a heartbeat every 15 min; none indoors
except the one "where a walk ended" fix. A few metres of noise, now and then a reflected 25 m,
and walks whose fixes stop part way (a lost fix, an empty battery).

``Deviation``s are injected on evaluated days (after ``warmup_days``), one kind each:
``place`` (somewhere new at a time the child is usually elsewhere), ``route`` (well off the
usual way home), ``late`` (not home until long after the usual time), ``hour`` (out at night);
``start_ms`` is when it begins: leaving the usual place or way (for ``late``: the usual arrival
home + 20 min, the most a normal day is late). ``Novelty`` windows are what a guardian would not
want to hear about: a new friend's house on a Saturday, a school trip in the school's calendar.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TextIO
from zoneinfo import ZoneInfo

import holidays

from edge.agents.tracker.config import ReportingConfig, parse_window
from gateway.services.routine_engine import RoutineEngine

JST = ZoneInfo("Asia/Tokyo")
ORIGIN = (38.1000, 140.0300)
M_PER_DEG = 111_195.0
KX = M_PER_DEG * math.cos(math.radians(ORIGIN[0]))
BLOCK = 100.0
BREAKS = [(date(2026, 12, 24), date(2027, 1, 7)), (date(2027, 3, 25), date(2027, 4, 6))]
SCHOOLS = [(-1500.0, 1500.0), (1500.0, 1500.0), (0.0, 0.0), (-1500.0, -1500.0), (1500.0, -1500.0),
           (3000.0, 0.0)]  # fmt: skip
XY = tuple[float, float]
Fix = tuple[int, int, float, float, float]  # ts_ms, child, x, y, acc
PACE = ReportingConfig()  # what the tracker agent sends, by default


def _seconds(window: str) -> tuple[float, float]:
    first, last = parse_window(window)
    return first.hour * 3600 + first.minute * 60, last.hour * 3600 + last.minute * 60


SCHOOL_WINDOWS = [_seconds(w) for w in PACE.school_windows]


@dataclass(frozen=True)
class Deviation:
    child: int
    kind: str  # place, route, late, hour
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Novelty:
    child: int
    kind: str  # friend, outing
    start_ms: int
    end_ms: int


@dataclass
class Kid:
    school: int
    home: XY
    leave_s: float  # seconds after midnight
    school_end_s: float
    speed: float
    variant: int  # the usual way: east-west first (0) or north-south first (1)
    club: XY | None
    club_end_s: float
    cram: XY | None
    cram_day: int
    sports: XY | None
    park: XY
    grandparents: XY
    friends: list[XY]


def lat_lon(x: float, y: float) -> tuple[float, float]:
    return ORIGIN[0] + y / M_PER_DEG, ORIGIN[1] + x / KX


def snap(x: float, y: float) -> XY:
    return round(x / BLOCK) * BLOCK, round(y / BLOCK) * BLOCK


def path(a: XY, b: XY, variant: int, shift: float = 0.0) -> list[XY]:
    """Along the grid: east-west first (variant 0) or north-south first; ``shift`` moves the
    middle leg to a parallel street."""
    if variant == 0:
        return [a, (a[0], a[1] + shift), (b[0], a[1] + shift), b]
    return [a, (a[0] + shift, a[1]), (a[0] + shift, b[1]), b]


def off_path(p: XY, route: list[XY]) -> float:
    """Metres from ``p`` to the polyline ``route``."""
    best = math.inf
    for (ax, ay), (bx, by) in zip(route, route[1:], strict=False):
        dx, dy = bx - ax, by - ay
        t = 0.0 if dx == dy == 0 else ((p[0] - ax) * dx + (p[1] - ay) * dy) / (dx * dx + dy * dy)
        t = max(0.0, min(1.0, t))
        best = min(best, math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy))
    return best


@dataclass
class Calendar:
    """School days, national holidays, breaks and each school's outing days."""

    outings: dict[int, set[date]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.national = holidays.country_holidays("JP")

    def on_break(self, day: date) -> bool:
        return any(a <= day <= b for a, b in BREAKS)

    def school_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.national and not self.on_break(day)

    def part(self, school: int, day: date) -> str:
        if self.school_day(day):
            return "outing" if day in self.outings.get(school, set()) else "school"
        if day.weekday() == 6 or day in self.national:
            return "sunday"
        return "saturday" if day.weekday() == 5 else "break"


class City:
    def __init__(
        self, children: int, start: date, days: int, seed: int = 1, warmup_days: int = 21
    ) -> None:
        self.rng = random.Random(seed)
        self.start, self.days, self.warmup_days = start, days, warmup_days
        self.calendar = Calendar()
        self.kids = [self._kid() for _ in range(children)]
        self.deviations: list[Deviation] = []
        self.novelties: list[Novelty] = []
        evaluated = [start + timedelta(days=d) for d in range(warmup_days, days)]
        school_days = [d for d in evaluated if self.calendar.school_day(d)]
        for s in range(len(SCHOOLS)):
            if school_days:
                self.calendar.outings[s] = {self.rng.choice(school_days)}
        # what happens on which (child, day): a deviation or a novelty, chosen up front
        self.plan: dict[tuple[int, date], str] = {}
        kinds = ("place", "route", "late", "hour")
        for i in range(children):
            if school_days and evaluated:
                kind = kinds[i % 4]
                pool = evaluated if kind == "hour" else school_days
                day = self.rng.choice(pool)
                if self.calendar.part(self.kids[i].school, day) != "outing":
                    self.plan[(i, day)] = kind
            saturdays = [d for d in evaluated if self.calendar.part(0, d) == "saturday"]
            if saturdays and self.rng.random() < 0.5:
                day = self.rng.choice(saturdays)
                self.plan.setdefault((i, day), "friend")

    def deviation_of(self, child: int, ts_ms: int) -> Deviation | None:
        """The injected deviation an alert of ``child`` at ``ts_ms`` is about — from 10 min
        before its start to 30 min after its end — or None: a false alarm."""
        for d in self.deviations:
            if d.child == child and d.start_ms - 600_000 <= ts_ms <= d.end_ms + 1_800_000:
                return d
        return None

    def _kid(self) -> Kid:
        r = self.rng
        school = r.randrange(len(SCHOOLS))
        sx, sy = SCHOOLS[school]

        def near(x: float, y: float, lo: float, hi: float) -> XY:
            a, d = r.uniform(0, 2 * math.pi), r.uniform(lo, hi)
            return snap(x + d * math.cos(a), y + d * math.sin(a))

        home = near(sx, sy, 300, 1500)
        return Kid(
            school=school,
            home=home,
            leave_s=r.uniform(7 * 3600 + 10 * 60, 7 * 3600 + 50 * 60),
            school_end_s=r.choice([14.5, 15.0, 15.5]) * 3600,
            speed=r.uniform(0.9, 1.3),
            variant=r.randrange(2),
            club=near(sx, sy, 100, 300) if r.random() < 0.4 else None,
            club_end_s=r.choice([17.0, 18.0]) * 3600,
            cram=near(sx, sy, 600, 1500) if r.random() < 0.25 else None,
            cram_day=r.randrange(5),
            sports=near(*home, 800, 2000) if r.random() < 0.3 else None,
            park=near(*home, 200, 500),
            grandparents=near(*home, 1000, 3000),
            friends=[near(*home, 150, 800) for _ in range(2)],
        )

    # -- one day ------------------------------------------------------------------------------
    def day(self, day: date) -> list[Fix]:
        """Every child's positions of one local day, in time order."""
        midnight = datetime.combine(day, time(0), JST)
        base = int(midnight.timestamp() * 1000)
        fixes: list[Fix] = []
        for i, kid in enumerate(self.kids):
            r = random.Random(hash((self.rng.random(), i)))
            walker = Walker(i, kid, r, base, fixes, weekday=day.weekday() < 5)
            event = self.plan.get((i, day))
            self._child_day(walker, kid, day, event)
        fixes.sort()
        return fixes

    def _child_day(self, w: Walker, kid: Kid, day: date, event: str | None) -> None:
        r, part = w.r, self.calendar.part(kid.school, day)
        school = SCHOOLS[kid.school]
        w.at = kid.home
        if part in ("school", "outing") and r.random() < 0.02 and event is None:
            part = "ill"
        if part in ("school", "outing"):
            w.stay_until(kid.leave_s + r.gauss(0, 240), indoors=True)
            w.walk(school, shift=w.street())
            if part == "outing":
                w.stay_until(8.5 * 3600, indoors=False)
                start = w.t
                dest = (school[0] + r.uniform(-8000, 8000), school[1] + r.uniform(5000, 9000))
                w.drive(dest)
                w.stay_until(13.5 * 3600, indoors=False)
                w.drive(school)
                self.novelties.append(Novelty(w.i, "outing", w.ms(start), w.ms(w.t)))
            usual_end = kid.school_end_s + r.gauss(0, 120)
            if event == "place" and r.random() < 0.5:  # leaves school mid-morning
                w.stay_until(r.uniform(9.5, 11.5) * 3600, indoors=True)
                self._novel_stay(w, kid, school, "place")
                w.walk(kid.home)
                w.stay_until(86400, indoors=True)
                return
            w.stay_until(usual_end, indoors=True)
            after = kid.club if kid.club is not None and day.weekday() < 5 else None
            cram = kid.cram if kid.cram is not None and day.weekday() == kid.cram_day else None
            if event == "place":
                self._novel_stay(w, kid, after or kid.home, "place")
            elif after is not None:
                w.walk(after)
                w.stay_until(kid.club_end_s + r.gauss(0, 300), indoors=True)
            elif r.random() < 0.15:
                w.walk(kid.park)
                w.stay_until(w.t + r.uniform(1200, 3000), indoors=False)
            if event == "late":
                usual_home = w.t + self._walk_s(w.at, kid.home, kid)
                w.stay_until(w.t + r.uniform(5400, 9000), indoors=True)
                w.walk(kid.home)
                self.deviations.append(Deviation(w.i, "late", w.ms(usual_home + 1200), w.ms(w.t)))
            elif event == "route":
                self._detour(w, kid, kid.home)
            else:
                w.walk(kid.home, shift=w.street())
            if cram is not None:
                w.stay_until(max(w.t, 17.5 * 3600), indoors=True)
                w.walk(cram)
                w.stay_until(19 * 3600, indoors=True)
                w.walk(kid.home)
        elif part == "ill":
            pass
        else:
            self._free_day(w, kid, day, part, event)
        if event == "hour":
            w.stay_until(max(w.t, r.uniform(21.0, 22.5) * 3600), indoors=True)
            start = w.t
            away = (kid.home[0] + r.choice([-1, 1]) * r.uniform(400, 900), kid.home[1])
            w.walk(away)
            w.stay_until(w.t + r.uniform(600, 1800), indoors=False)
            w.walk(kid.home)
            self.deviations.append(Deviation(w.i, "hour", w.ms(start), w.ms(w.t)))
        w.stay_until(86400, indoors=True)

    def _free_day(self, w: Walker, kid: Kid, day: date, part: str, event: str | None) -> None:
        r = w.r
        w.stay_until(r.uniform(8.5, 10) * 3600, indoors=True)
        if part == "saturday" and kid.sports is not None:
            w.stay_until(8.7 * 3600, indoors=True)
            w.walk(kid.sports)
            w.stay_until(12 * 3600, indoors=False)
            w.walk(kid.home)
        if r.random() < 0.35:  # a family trip by car
            w.stay_until(max(w.t, r.uniform(10, 14) * 3600), indoors=True)
            w.drive((kid.home[0] + r.uniform(-6000, 6000), kid.home[1] + r.uniform(-6000, 6000)))
            w.stay_until(w.t + r.uniform(3600, 7200), indoors=True)
            w.drive(kid.home)
        w.stay_until(max(w.t, 13.5 * 3600), indoors=True)
        if event == "friend":
            start = w.t
            a = r.uniform(0, 2 * math.pi)
            d = r.uniform(300, 900)
            new = snap(kid.home[0] + d * math.cos(a), kid.home[1] + d * math.sin(a))
            w.walk(new)
            w.stay_until(w.t + r.uniform(5400, 9000), indoors=True)
            w.walk(kid.home)
            self.novelties.append(Novelty(w.i, "friend", w.ms(start), w.ms(w.t)))
            return
        choice = r.random()
        where = (
            kid.park
            if choice < 0.3
            else r.choice(kid.friends)
            if choice < 0.5
            else kid.grandparents
            if choice < 0.6
            else None
        )
        if where is not None:
            w.walk(where)
            w.stay_until(w.t + r.uniform(3600, 9000), indoors=where is not kid.park)
            w.walk(kid.home)

    def _novel_stay(self, w: Walker, kid: Kid, usual_to: XY, kind: str) -> None:
        r = w.r
        usual = path(w.at, usual_to, kid.variant)
        for _ in range(20):
            a, d = r.uniform(0, 2 * math.pi), r.uniform(1000, 2000)
            new = snap(w.at[0] + d * math.cos(a), w.at[1] + d * math.sin(a))
            if off_path(new, usual) > 600 and math.dist(new, kid.home) > 800:
                break
        leave = w.t
        route = path(w.at, new, r.randrange(2))
        start = leave + _first_off(route, usual, 150) / kid.speed
        w.walk(new, route=route)
        w.stay_until(w.t + r.uniform(3600, 6000), indoors=True)
        self.deviations.append(Deviation(w.i, kind, w.ms(start), w.ms(w.t)))

    def _detour(self, w: Walker, kid: Kid, to: XY) -> None:
        """Half-way along the usual way, off at a right angle for 400-700 m, a block along,
        and back to the usual way."""
        r = w.r
        usual = path(w.at, to, kid.variant)
        legs = [(a, b) for a, b in zip(usual, usual[1:], strict=False) if math.dist(a, b) > 0]
        (ax, ay), (bx, by) = max(legs, key=lambda leg: math.dist(*leg))
        length = math.dist((ax, ay), (bx, by))
        ux, uy = (bx - ax) / length, (by - ay) / length
        off = r.uniform(400, 700) * r.choice([-1, 1])
        mid = (ax + ux * length / 2, ay + uy * length / 2)
        out = (mid[0] - uy * off, mid[1] + ux * off)
        along = min(BLOCK, length / 2)
        route = [*usual[: usual.index((ax, ay)) + 1], mid, out]
        route += [
            (out[0] + ux * along, out[1] + uy * along),
            (mid[0] + ux * along, mid[1] + uy * along),
        ]
        route += usual[usual.index((bx, by)) :]
        start = w.t + _first_off(route, usual, 150) / kid.speed
        w.walk(to, route=route)
        self.deviations.append(Deviation(w.i, "route", w.ms(start), w.ms(w.t)))

    def _walk_s(self, a: XY, b: XY, kid: Kid) -> float:
        return (abs(a[0] - b[0]) + abs(a[1] - b[1])) / kid.speed


def _first_off(route: list[XY], usual: list[XY], limit: float) -> float:
    """Metres along ``route`` until it is ``limit`` away from ``usual``."""
    walked = 0.0
    for a, b in zip(route, route[1:], strict=False):
        length = math.dist(a, b)
        for k in range(int(length // 10) + 1):
            f = k * 10 / length if length else 0.0
            p = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
            if off_path(p, usual) > limit:
                return walked + k * 10
        walked += length
    return walked


class Guardians:
    """The children's guardians, answering the routine engine as they would: "this is fine" to
    each alert that is not about an injected deviation (they know where the child is: at the
    cram school, at the park), ``answer_s`` after it was raised; nothing to the others. A sink
    for ``Replay`` (its ``write``, passed on to ``out``); ``until`` gives the engine the answers
    due by then. Devices are named ``c`` + the child's number."""

    def __init__(
        self, city: City, engine: RoutineEngine, out: TextIO, answer_s: float = 600.0
    ) -> None:
        self.city, self.engine, self.out = city, engine, out
        self.answer_ms = int(answer_s * 1000)
        self.pending: list[tuple[int, str, str]] = []
        self.answered = 0

    def write(self, line: str) -> None:
        self.out.write(line)
        record = json.loads(line)
        if record["event"] != "raise":
            return
        moment = datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
        ts = int(moment.timestamp() * 1000)
        if self.city.deviation_of(int(record["device"][1:]), ts) is None:
            heapq.heappush(self.pending, (ts + self.answer_ms, record["device"], record["key"]))

    def until(self, now_ms: int) -> None:
        while self.pending and self.pending[0][0] <= now_ms:
            due, device, key = heapq.heappop(self.pending)
            self.answered += self.engine.feedback(device, key, due)


class Walker:
    """Moves one child through a day and writes what its tracker would send."""

    def __init__(
        self, i: int, kid: Kid, r: random.Random, base_ms: int, out: list[Fix], weekday: bool
    ) -> None:
        self.i, self.kid, self.r, self.base, self.out = i, kid, r, base_ms, out
        self.weekday = weekday
        self.t = 0.0
        self.at: XY = kid.home

    def ms(self, t: float) -> int:
        return self.base + int(t * 1000)

    def fix(self, t: float, p: XY, sigma: float = 4.0) -> None:
        if t >= 86400:
            return
        r = self.r
        if r.random() < 0.04:
            sigma = 25.0  # a reflected signal
        acc = round(r.uniform(4.0, 9.0), 1)
        self.out.append(
            (self.ms(t), self.i, p[0] + r.gauss(0, sigma), p[1] + r.gauss(0, sigma), acc)
        )

    def stay_until(self, until: float, indoors: bool) -> None:
        until = min(until, 86400.0)
        if until <= self.t:
            return
        if indoors:
            if self.r.random() < 0.8:
                self.fix(self.t + PACE.settle_s, self.at)  # "where a walk ended"
        else:
            t = self.t + PACE.settle_s
            while t < until:
                self.fix(t, self.at)
                t += PACE.heartbeat_s
        self.t = until

    def street(self) -> float:
        """Most days the usual street; one day in ten the parallel one, a block over."""
        return self.r.choice([-BLOCK, BLOCK]) if self.r.random() < 0.1 else 0.0

    def walk(self, to: XY, shift: float = 0.0, route: list[XY] | None = None) -> None:
        route = route or path(self.at, to, self.kid.variant, shift)
        self._move(route, self.kid.speed * self.r.uniform(0.9, 1.1))
        self.at = to

    def drive(self, to: XY) -> None:
        self._move(path(self.at, to, self.r.randrange(2)), self.r.uniform(8, 12))
        self.at = to

    def _school_window(self, t: float) -> bool:
        return self.weekday and any(a <= t % 86400 < b for a, b in SCHOOL_WINDOWS)

    def _move(self, route: list[XY], speed: float) -> None:
        """The agent's looks along ``route``: one every ``school_every_s`` in a school window
        (sending at ``school_move_m`` from the last position sent), else every
        ``moving_every_s`` (sending at ``move_m``); the first look of a walk comes at the still
        pace, up to ``still_every_s`` after leaving."""
        lost = self.r.random() < 0.03  # the fixes stop part way (a lost fix, a flat battery)
        lost_after = self.r.uniform(0.2, 0.8)
        legs = [(a, b, math.dist(a, b)) for a, b in zip(route, route[1:], strict=False)]
        total = sum(length for _, _, length in legs)
        duration = total / speed
        start = self.t
        sent = route[0]
        school = self._school_window(start)
        t = start + self.r.uniform(1.0, PACE.school_every_s if school else PACE.still_every_s)
        while t < start + duration:
            done = (t - start) * speed
            if lost and done > lost_after * total:
                break
            here = _along(legs, done)
            school = self._school_window(t)
            if math.dist(here, sent) >= (PACE.school_move_m if school else PACE.move_m):
                self.fix(t, here)
                sent = here
            t += PACE.school_every_s if school else PACE.moving_every_s
        else:  # the first look after arriving sees the child where it stopped
            school = self._school_window(t)
            if math.dist(route[-1], sent) >= (PACE.school_move_m if school else PACE.move_m):
                self.fix(t, route[-1])
        self.t = start + duration


def _along(legs: list[tuple[XY, XY, float]], metres: float) -> XY:
    """The point ``metres`` along a route given as its legs."""
    for a, b, length in legs:
        if metres <= length and length > 0:
            f = metres / length
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        metres -= length
    return legs[-1][1]
