"""One child's learned routine: stay points, places, week-part schedules and corridors.

What the model learns from a child's positions (time order, one child only):

* **stay points** — fixes within ``stay_radius_m`` of where a run began, for at least
  ``stay_min_s``. Silence inside a stay (indoors at school, asleep at home) is part of it when
  the next fix is still there, up to ``max_gap_s``;
* **places** — stay points within ``place_radius_m`` of each other (home, school, the club,
  cram school, grandparents, the park): an online leader clustering, each place's centre a
  running mean of its stays;
* **days** — each local day becomes 96 quarter-hours, each labelled with the place the child was
  at (or ``TRAVEL``, or ``UNKNOWN`` when nothing says), with its week-part (school day, Saturday,
  Sunday/holiday, a weekday the school is closed) and the corridor cells walked from each place;
* **schedules** — per week-part and quarter-hour, the share of (recent-weighted) days the child
  was at each place, and the place it is usually at;
* **corridors** — per place of departure, the ``cell_m`` squares the child walked through; and
  the **streets**, every square walked on the week-parts whose ways are judged.

It keeps at most ``memory_days`` days (the positions' own retention), weights each by
``0.5 ** (age / half_life_days)`` (it learns every day and forgets slowly), and rebuilds its
schedules once a day. Places no kept day refers to are dropped. Nothing here knows the child's
name, and a model is never shared across children.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from gateway.services.routine_config import WEEK_PARTS, RoutineConfig

M_PER_DEG = 111_195.0
SLOT_MS = 900_000  # a quarter of an hour
SLOTS = 96
TRAVEL = -1
UNKNOWN = -2
DAY_MS = 86_400_000
WEEKEND = "weekend"  # Saturdays and Sundays pooled, until each has enough days of its own
WEEKEND_PARTS = ("saturday", "sunday")
_BIAS = 1 << 15  # cell indices are stored offset to stay positive


@dataclass
class Stay:
    """A run of fixes that may be a stay point: its centre (running mean), first and last fix."""

    x: float
    y: float
    n: int
    start_ms: int
    last_ms: int
    lx: float = 0.0  # the last fix
    ly: float = 0.0
    ax: float = 0.0  # the first fix: a stay is what stays within the radius of where it began
    ay: float = 0.0
    place: int | None = None  # set once it lasted ``stay_min_s``
    stopped: bool = False  # two fixes on the spot a minute apart: the child stopped here
    quiet: bool = False  # began after a long silence: the child may have been here unseen

    def add(self, x: float, y: float, ts_ms: int, still_m: float) -> None:
        if ts_ms - self.last_ms >= 60_000 and math.hypot(x - self.lx, y - self.ly) <= still_m:
            self.stopped = True
        self.lx, self.ly = x, y
        self.count(x, y, ts_ms)

    def count(self, x: float, y: float, ts_ms: int) -> None:

        self.n += 1
        self.x += (x - self.x) / self.n
        self.y += (y - self.y) / self.n
        self.last_ms = ts_ms


@dataclass
class Day:
    """A finished day as the model keeps it: no positions, only quarter-hours and cells."""

    day: date
    part: str
    slots: np.ndarray  # int16[96]: place id, TRAVEL or UNKNOWN
    cells: np.ndarray  # int64 keys (origin place << 32 | cell)
    trips: dict[int, int]  # departures per place
    arrivals: list[tuple[int, int]]  # (place, minute of the day) of each stay's start


@dataclass
class Schedule:
    """Per week-part: the usual place and its share for each quarter-hour, and every place's
    share (column per place, ``cols`` maps place id to column)."""

    days: int = 0
    usual: np.ndarray = field(default_factory=lambda: np.full(SLOTS, -1, np.int32))
    usual_share: np.ndarray = field(default_factory=lambda: np.zeros(SLOTS))
    share: np.ndarray = field(default_factory=lambda: np.zeros((SLOTS, 0)))


@dataclass
class Fine:
    """A guardian's "this is fine": what it covers, until ``last_ms`` + memory."""

    kind: str
    part: str
    last_ms: int
    x: float = 0.0
    y: float = 0.0
    place: int = -1
    slots: tuple[int, int] = (0, SLOTS)
    origin: int = -1
    cells: frozenset[int] = frozenset()


class ChildModel:
    # a model saved (pickled) before this was learned loads with it: never seen leaving home
    left_home_ms = 0

    def __init__(self, config: RoutineConfig, lat0: float, lon0: float) -> None:
        self.c = config
        self.lat0, self.lon0 = lat0, lon0
        self.kx = M_PER_DEG * math.cos(math.radians(lat0))
        self.places: dict[int, list[float]] = {}  # id -> [x, y, stays seen (capped)]
        self.next_place = 0
        self.days: list[Day] = []
        self.fines: list[Fine] = []
        # today, being learned
        self.day: date | None = None
        self.part = "school"
        self.day_start_ms = 0
        self.slots = np.full(SLOTS, UNKNOWN, np.int16)
        self.cells: set[int] = set()
        self.trips: dict[int, int] = {}
        self.arrivals: list[tuple[int, int]] = []
        # the stay detector and where the child is
        self.stay: Stay | None = None
        self.origin: int | None = None  # the place the current trip started from
        self.last_ms: int | None = None
        self.last_xy = (0.0, 0.0)
        self.last_at: dict[int, int] = {}  # place -> last fix there
        self.left_ms = 0  # the first fix after the child left a place
        self.left_home_ms = 0  # ... left home: out since then, wherever it went after
        self.driven = False  # since it left: faster than ``drive_mps`` (in a car, with an adult)
        # learned schedules, rebuilt daily
        self.schedules: dict[str, Schedule] = {p: Schedule() for p in (*WEEK_PARTS, WEEKEND)}
        self.out_share = np.ones(SLOTS)
        self.corridors: dict[int, set[int]] = {}
        # every square walked, whatever the origin, on the week-parts whose ways are judged
        self.streets: set[int] = set()
        self.trip_counts: dict[int, int] = {}
        self.home: int | None = None
        self.cols: dict[int, int] = {}  # place id -> its column in the schedules' shares

    # -- geometry -------------------------------------------------------------------------------
    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * M_PER_DEG

    def lat_lon(self, x: float, y: float) -> tuple[float, float]:
        return self.lat0 + y / M_PER_DEG, self.lon0 + x / self.kx

    def cell(self, x: float, y: float) -> int:
        size = self.c.cell_m
        return (int(x // size) + _BIAS) << 16 | (int(y // size) + _BIAS)

    def nearest_place(self, x: float, y: float) -> tuple[int | None, float]:
        best, dist = None, math.inf
        for pid, (px, py, _) in self.places.items():
            d = math.hypot(x - px, y - py)
            if d < dist:
                best, dist = pid, d
        return best, dist

    def place_at(self, x: float, y: float) -> int | None:
        pid, dist = self.nearest_place(x, y)
        return pid if dist <= self.c.place_radius_m else None

    # -- learning -------------------------------------------------------------------------------
    def start_day(self, day: date, part: str, day_start_ms: int) -> None:
        """A new local day begins: yesterday is finished and learned from."""
        if self.day is not None and day != self.day:
            stay = self.stay
            pid = None
            if stay is not None:
                pid = stay.place if stay.place is not None else self.place_at(stay.x, stay.y)
            if stay is not None and pid is not None and self.last_ms is not None:
                # believed still there (indoors, asleep): the evening is that place's
                self._label(self.last_ms, self.day_start_ms + DAY_MS, pid)
                if stay.place is None and stay.start_ms >= self.day_start_ms:
                    self._arrived(pid, stay.start_ms)
            self.days.append(
                Day(
                    self.day,
                    self.part,
                    self.slots.copy(),
                    np.fromiter(self.cells, np.int64, len(self.cells)),
                    dict(self.trips),
                    list(self.arrivals),
                )
            )
            self._forget(day)
            self.rebuild(day)
        self.day, self.part, self.day_start_ms = day, part, day_start_ms
        self.slots = np.full(SLOTS, UNKNOWN, np.int16)
        self.cells, self.trips, self.arrivals = set(), {}, []

    def observe(self, ts_ms: int, x: float, y: float) -> None:
        """One usable fix of today (the caller drops worse than ``max_accuracy_m``)."""
        c = self.c
        stay, last = self.stay, self.last_ms
        if (
            stay is not None
            and math.hypot(x - stay.ax, y - stay.ay) <= c.stay_radius_m
            and ts_ms - stay.last_ms <= c.max_gap_s * 1000
        ):
            stay.add(x, y, ts_ms, c.still_m)
            if stay.place is None and ts_ms - stay.start_ms >= c.stay_min_s * 1000:
                self._confirm(stay)
                self._label(stay.start_ms, ts_ms, stay.place)  # type: ignore[arg-type]
            elif stay.place is not None and last is not None:
                self._label(last, ts_ms, stay.place)
        else:
            if stay is not None:
                silent = ts_ms - stay.last_ms
                if (
                    stay.place is None
                    and (stay.stopped or self._silent_there(stay, x, y, silent))
                    and ts_ms - stay.start_ms >= c.stay_min_s * 1000
                    and silent <= c.max_gap_s * 1000
                ):
                    # the tracker's "walk ended" fix, then silence: indoors there all along (a
                    # walking child sends a fix every 50 m), though the fix that says it left is
                    # already down the street
                    self._confirm(stay)
                    self._label(stay.start_ms, ts_ms, stay.place)  # type: ignore[arg-type]
                self._leave(stay, ts_ms)
            if last is not None and ts_ms - last > 1_800_000:
                self.origin = self.place_at(x, y)  # after a long silence: where it starts from
            if last is not None and ts_ms - last <= 1_800_000:
                self._label(last, ts_ms, TRAVEL)
            quiet = last is None or ts_ms - last > 1_800_000
            self.stay = Stay(x, y, 1, ts_ms, ts_ms, x, y, x, y, quiet=quiet)
        if self.stay is not None and self.stay.place is None and self.origin is not None:
            self.cells.add(self.origin << 32 | self.cell(x, y))
        if last is not None and ts_ms - last >= 20_000:
            lx, ly = self.last_xy
            self.driven |= math.hypot(x - lx, y - ly) / ((ts_ms - last) / 1000) > c.drive_mps
        self.last_ms, self.last_xy = ts_ms, (x, y)
        here = self.stay.place if self.stay is not None else None
        if here is None:
            here = self.place_at(x, y)
        if here is not None:
            self.last_at[here] = ts_ms

    def _silent_there(self, stay: Stay, x: float, y: float, silent_ms: int) -> bool:
        """Silent for ``stay_min_s`` after the stay's last fix, and the next fix still within two
        stay radii of it: the child went in there (a walking tracker sends every 50 m) and was
        seen again leaving; the two fixes on the spot that say "stopped" may be a reflection
        apart. A fix lost on a walk is no stay: the next fix comes from far down the way."""
        near = math.hypot(x - stay.lx, y - stay.ly) <= 2 * self.c.stay_radius_m
        return near and silent_ms >= self.c.stay_min_s * 1000

    def _confirm(self, stay: Stay) -> None:
        pid = self.place_at(stay.x, stay.y)
        if pid is None:
            pid = self.next_place
            self.next_place += 1
            self.places[pid] = [stay.x, stay.y, 0.0]
        stay.place = pid
        self.origin = None
        if stay.start_ms >= self.day_start_ms:
            self._arrived(pid, stay.start_ms)

    def _arrived(self, pid: int, ts_ms: int) -> None:
        self.arrivals.append((pid, int((ts_ms - self.day_start_ms) // 60_000)))

    def _leave(self, stay: Stay, ts_ms: int) -> None:
        """The child left ``stay``: a trip starts if it was at a place (seen long enough there,
        or a known place where it stopped or was silent, e.g. home with one fix before leaving;
        walking past a known place is no trip from it)."""
        pid = stay.place
        if pid is None and (stay.stopped or stay.quiet):
            pid = self.place_at(stay.x, stay.y)
        if pid is None:
            return
        place = self.places[pid]
        if stay.place is not None:
            weight = min(place[2], 30.0)
            place[0] = (place[0] * weight + stay.x) / (weight + 1)
            place[1] = (place[1] * weight + stay.y) / (weight + 1)
            place[2] = weight + 1
        self.origin = pid
        self.left_ms = ts_ms
        if pid == self.home:
            self.left_home_ms = ts_ms
        self.driven = False
        self.trips[pid] = self.trips.get(pid, 0) + 1

    def _label(self, from_ms: int, to_ms: int, value: int) -> None:
        first = max(0, (from_ms - self.day_start_ms) // SLOT_MS)
        last = min(SLOTS - 1, (to_ms - self.day_start_ms) // SLOT_MS)
        if first <= last:
            if value == TRAVEL:  # a stay already seen in a quarter-hour says more than walking
                part = self.slots[first : last + 1]
                part[part == UNKNOWN] = TRAVEL
            else:
                self.slots[first : last + 1] = value

    def _forget(self, today: date) -> None:
        keep = self.c.memory_days
        self.days = [d for d in self.days if (today - d.day).days <= keep]
        horizon = keep * DAY_MS
        now_ms = self.day_start_ms + DAY_MS
        self.fines = [f for f in self.fines if now_ms - f.last_ms <= horizon]
        used = {int(v) for d in self.days for v in np.unique(d.slots) if v >= 0}
        used |= {f.place for f in self.fines}
        if self.stay is not None and self.stay.place is not None:
            used.add(self.stay.place)
        for pid in list(self.places):
            if pid not in used:
                del self.places[pid]
                self.last_at.pop(pid, None)

    def rebuild(self, today: date) -> None:
        """Schedules, corridors and home from the kept days, recent days weighing more."""
        if not self.days:
            return
        ids = sorted(self.places)
        self.cols = {pid: i for i, pid in enumerate(ids)}
        lut = np.full(max(self.next_place, 1) + 2, -1, np.int32)
        lut[ids] = np.arange(len(ids))
        weights = [0.5 ** ((today - d.day).days / self.c.half_life_days) for d in self.days]
        night = np.zeros(len(ids))
        for part, members in (*((p, (p,)) for p in WEEK_PARTS), (WEEKEND, WEEKEND_PARTS)):
            counts = np.zeros((SLOTS, len(ids)))
            known = np.zeros(SLOTS)
            n = 0
            for d, w in zip(self.days, weights, strict=True):
                if d.part not in members:
                    continue
                n += 1
                at = d.slots >= 0
                cols = lut[d.slots[at]]
                ok = cols >= 0
                np.add.at(counts, (np.nonzero(at)[0][ok], cols[ok]), w)
                known += w * (d.slots != UNKNOWN)
            share = counts / np.maximum(known, 1e-9)[:, None]
            if part != WEEKEND:
                night += counts[:20].sum(axis=0)
            schedule = Schedule(n, np.full(SLOTS, -1, np.int32), np.zeros(SLOTS), share)
            if ids:
                best = share.argmax(axis=1)
                schedule.usual = np.asarray(ids, np.int32)[best]
                schedule.usual_share = share[np.arange(SLOTS), best]
            self.schedules[part] = schedule
        if ids:
            self.home = ids[int(night.argmax())] if night.max() > 0 else self.home
        out = np.zeros(SLOTS)
        known = np.zeros(SLOTS)
        for d, w in zip(self.days, weights, strict=True):
            seen = d.slots != UNKNOWN
            known += w * seen
            out += w * (seen & (d.slots != (self.home if self.home is not None else -9)))
        self.out_share = np.where(known > 0, out / np.maximum(known, 1e-9), 1.0)
        self.corridors, self.trip_counts, self.streets = {}, {}, set()
        for d in self.days:
            for origin, count in d.trips.items():
                self.trip_counts[origin] = self.trip_counts.get(origin, 0) + count
            for key in d.cells.tolist():
                self.corridors.setdefault(key >> 32, set()).add(key & 0xFFFFFFFF)
            if d.part in self.c.route_parts:
                # a Saturday's walk to the sports club or a Sunday's drive is no street the
                # child knows on a school day: a detour along it is still told
                self.streets.update(key & 0xFFFFFFFF for key in d.cells.tolist())
        for fine in self.fines:
            if fine.kind == "route":
                self.corridors.setdefault(fine.origin, set()).update(fine.cells)
                self.streets.update(fine.cells)

    # -- what the schedules say -----------------------------------------------------------------
    def schedule_for(self, part: str) -> Schedule:
        """The schedule that judges ``part``: its own; with ``pool_weekends``, for a Saturday or a
        Sunday, the two pooled until it has ``min_part_days`` days (a 30-day memory holds only
        four or five of each, but eight or nine weekend days)."""
        own = self.schedules[part]
        if self.c.pool_weekends and own.days < self.c.min_part_days and part in WEEKEND_PARTS:
            return self.schedules[WEEKEND]
        return own

    def share_of(self, part: str, slot: int, place: int, window: int = 4) -> float:
        """The most days the child was at ``place`` around ``slot`` (± ``window`` quarters)."""
        col = self.cols.get(place)
        if col is None:
            return 0.0
        schedule = self.schedules[part]
        lo, hi = max(0, slot - window), min(SLOTS, slot + window + 1)
        return float(schedule.share[lo:hi, col].max()) if schedule.share.shape[1] > col else 0.0

    def weekly(self, slot: int, place: int, window: int = 4) -> bool:
        """At ``place`` around ``slot`` (± ``window`` quarters) on this day of the week in some
        kept week: the weekly cram school or swimming lesson, which a share of all school days
        (one in five at most) can hide."""
        if self.day is None:
            return False
        weekday = self.day.weekday()
        lo, hi = max(0, slot - window), min(SLOTS, slot + window + 1)
        return any(
            d.day.weekday() == weekday and bool((d.slots[lo:hi] == place).any()) for d in self.days
        )

    def usual_arrival(self, part: str, place: int, minute: int, quantile: float) -> int | None:
        """The minute of the day by which the child had arrived at ``place`` on ``quantile`` of
        the days of ``part`` it arrived there in the four hours before ``minute``; None if that
        happened on too few days to say."""
        firsts = []
        for d in self.days:
            if d.part != part:
                continue
            seen = [m for p, m in d.arrivals if p == place and minute - 240 <= m <= minute]
            if seen:
                firsts.append(min(seen))
        if len(firsts) < max(3, self.c.min_part_days // 2):
            return None
        firsts.sort()
        return firsts[min(len(firsts) - 1, int(quantile * len(firsts)))]

    def in_corridor(self, origin: int | None, x: float, y: float) -> bool:
        """Near (``route_off_m``) a square walked from ``origin`` — or, ``origin`` None, in a
        square walked from any place on a day of ``route_parts`` (a street the child knows)."""
        cells = self.corridors.get(origin) if origin is not None else self.streets
        if not cells:
            return False
        reach = max(1, round(self.c.route_off_m / self.c.cell_m)) if origin is not None else 0
        key = self.cell(x, y)
        cx, cy = key >> 16, key & 0xFFFF
        return any(
            ((cx + dx) << 16 | (cy + dy)) in cells
            for dx in range(-reach, reach + 1)
            for dy in range(-reach, reach + 1)
        )

    @property
    def days_seen(self) -> int:
        return len(self.days)
